"""One side of rt_pair.py: a client and its worker; on each line 'go N' on stdin, N sequential
round trips, then one line of their times (us) on stdout."""
import os, sys, time, uuid, subprocess, json
from pathlib import Path
sys.path.insert(0, "/work/main/benchmarks")
import bench_celeriac, run
tmp = Path(f"/tmp/rtside-{uuid.uuid4().hex[:8]}"); tmp.mkdir()
w = None
try:
    url = run.amqp_url(tmp)
    app = bench_celeriac.make_app(url, None, "rpc://", None, None)
    t = app.tasks[bench_celeriac.TASK_NAME]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELERIAC_")}
    env.update(BENCH_BROKER_URL=url, BENCH_RESULT_STORE="rpc://", PYTHONPATH="/work/main/benchmarks:" + env.get("PYTHONPATH", ""))
    w = subprocess.Popen([sys.executable, "-m", "celeriac", "-A", "bench_celeriac", "worker", "-P", "threads", "-c", "4", "--loglevel", "WARNING"], env=env, cwd="/work/main/benchmarks", start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t.delay().get(timeout=60)
    for _ in range(100): t.delay().get(timeout=10)
    print("ready", flush=True)
    for line in sys.stdin:
        n = int(line.split()[1])
        ts = []
        import threading
        def one():
            for _ in range(n // 16):
                s = time.perf_counter(); t.delay().get(timeout=10); ts.append(round((time.perf_counter() - s) * 1e6))
        th = [threading.Thread(target=one) for _ in range(16)]
        for x in th: x.start()
        for x in th: x.join()
        print(json.dumps(ts), flush=True)
finally:
    if w is not None:
        os.killpg(w.pid, 2); w.wait(30)
    run.amqp_cleanup(tmp)
