"""Client threads under cProfile (publisher I/O thread, rpc link thread) during sequential round trips."""
import cProfile, os, sys, time, uuid, subprocess, statistics, threading, pstats
from pathlib import Path
sys.path.insert(0, "/work/main/benchmarks")
from celeriac_amqp import _publisher, _link
profs = {}
def wrap(cls, name, label):
    orig = getattr(cls, name)
    def run(self, *a, **k):
        p = cProfile.Profile(); profs[label] = p; p.enable()
        try:
            return orig(self, *a, **k)
        finally:
            p.disable()
    setattr(cls, name, run)
wrap(_publisher.Publisher, "_run", "publisher")
wrap(_link.Link, "_run", "link")
import bench_celeriac, run
n = int(sys.argv[1])
tmp = Path(f"/tmp/rtc-{uuid.uuid4().hex[:8]}"); tmp.mkdir()
try:
    url = run.amqp_url(tmp)
    app = bench_celeriac.make_app(url, None, "rpc://", None, None)
    t = app.tasks[bench_celeriac.TASK_NAME]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELERIAC_")}
    env.update(BENCH_BROKER_URL=url, BENCH_RESULT_STORE="rpc://", PYTHONPATH="/work/main/benchmarks:" + env.get("PYTHONPATH", ""))
    w = subprocess.Popen([sys.executable, "-m", "celeriac", "-A", "bench_celeriac", "worker", "-P", "threads", "-c", "4", "--loglevel", "WARNING"], env=env, cwd="/work/main/benchmarks", start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t.delay().get(timeout=60)
    for _ in range(n): t.delay().get(timeout=10)
    os.killpg(w.pid, 2); w.wait(30)
    app.close()
finally:
    run.amqp_cleanup(tmp)
for label, p in profs.items():
    print("=====", label)
    pstats.Stats(p).sort_stats("tottime").print_stats(25)
