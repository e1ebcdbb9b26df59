"""Client receiving N rpc:// replies while a worker drains: py-spy the client itself."""
import os, sys, time, uuid, subprocess
from pathlib import Path
sys.path.insert(0, "/work/main/benchmarks")
import bench_celeriac, run
n = int(sys.argv[1])
tmp = Path(f"/tmp/cprof-{uuid.uuid4().hex[:8]}"); tmp.mkdir()
try:
    url = run.amqp_url(tmp)
    app = bench_celeriac.make_app(url, None, "rpc://", None, None)
    t = app.tasks[bench_celeriac.TASK_NAME]
    first = t.delay(); app.flush()
    hs = [t.delay() for _ in range(n)]
    app.flush()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELERIAC_")}
    env.update(BENCH_BROKER_URL=url, BENCH_RESULT_STORE="rpc://", PYTHONPATH="/work/main/benchmarks:" + env.get("PYTHONPATH", ""))
    w = subprocess.Popen([sys.executable, "-m", "celeriac", "-A", "bench_celeriac", "worker", "-P", "threads", "-c", "4", "--loglevel", "WARNING"], env=env, cwd="/work/main/benchmarks", start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first.get(timeout=60)
    spy = subprocess.Popen(["/work/main/.venv/bin/py-spy", "record", "--nonblocking", "-r", "500", "--format", "raw", "-o", "/tmp/c.raw", "--pid", str(os.getpid())], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    c0 = time.process_time(); s = time.perf_counter()
    hs[-1].get(timeout=120)
    e = time.perf_counter() - s; c = time.process_time() - c0
    spy.send_signal(2); spy.wait(20)
    print(f"{n} replies in {e:.2f} s; client CPU {c/n*1e6:.0f} us per reply")
    os.killpg(w.pid, 2); w.wait(30)
    app.close()
finally:
    run.amqp_cleanup(tmp)
