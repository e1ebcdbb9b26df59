"""Messages awaiting confirms when a sequential delay().get() loop publishes (run at 0f5af09; see pairs-f4352a0.txt)."""
import sys, time, uuid, os, subprocess, collections
sys.path.insert(0, "/work/main/benchmarks")
import bench_celeriac, run
from pathlib import Path
from celeriac_amqp import _publisher
tmp = Path(f"/tmp/rt-{uuid.uuid4().hex[:6]}"); tmp.mkdir()
url = run.amqp_url(tmp); w = None
try:
    app = bench_celeriac.make_app(url, None, "rpc://")
    t = app.tasks[bench_celeriac.TASK_NAME]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELERIAC_")}
    env.update(BENCH_BROKER_URL=url, BENCH_RESULT_STORE="rpc://", PYTHONPATH="/work/main/benchmarks")
    w = subprocess.Popen([sys.executable, "-m", "celeriac", "-A", "bench_celeriac", "worker", "-P", "threads", "-c", "4", "--loglevel", "WARNING"], env=env, cwd="/work/main/benchmarks", start_new_session=True)
    t.delay().get(timeout=60)
    pub = app.transport._publisher
    seen = collections.Counter(); ts=[]
    for _ in range(2000):
        seen[min(len(pub._tags), 10)] += 1
        s=time.perf_counter(); t.delay().get(timeout=10); ts.append(time.perf_counter()-s)
    print(sorted(seen.items()))
    ts.sort(); print("p50 %.0f us" % (ts[len(ts)//2]*1e6))
finally:
    if w: os.killpg(w.pid, 2); w.wait(30)
    run.amqp_cleanup(tmp)
