"""In sequential round trips: how many earlier messages still await their confirm at each delay()."""
import os, sys, uuid, subprocess, collections
from pathlib import Path
sys.path.insert(0, "/work/main/benchmarks")
from celeriac_amqp import _publisher
seen = collections.Counter()
orig = _publisher.Publisher.publish
def publish(self, *a, **k):
    seen[len(self._unconfirmed)] += 1
    return orig(self, *a, **k)
_publisher.Publisher.publish = publish
direct = collections.Counter()
orig_w = _publisher.Publisher._write_now
def write_now(self, mine):
    r = orig_w(self, mine); direct[r] += 1; return r
_publisher.Publisher._write_now = write_now
import bench_celeriac, run
n = int(sys.argv[1])
tmp = Path(f"/tmp/unc-{uuid.uuid4().hex[:8]}"); tmp.mkdir()
try:
    url = run.amqp_url(tmp)
    app = bench_celeriac.make_app(url, None, "rpc://", None, None)
    t = app.tasks[bench_celeriac.TASK_NAME]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELERIAC_")}
    env.update(BENCH_BROKER_URL=url, BENCH_RESULT_STORE="rpc://", PYTHONPATH="/work/main/benchmarks:" + env.get("PYTHONPATH", ""))
    w = subprocess.Popen([sys.executable, "-m", "celeriac", "-A", "bench_celeriac", "worker", "-P", "threads", "-c", "4", "--loglevel", "WARNING"], env=env, cwd="/work/main/benchmarks", start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t.delay().get(timeout=60)
    seen.clear(); direct.clear()
    for _ in range(n): t.delay().get(timeout=10)
    print("messages awaiting their confirm at each delay():", dict(sorted(seen.items())), "; written by the caller:", direct[True], "of", n, "(left to the I/O thread:", direct[False], ")")
    os.killpg(w.pid, 2); w.wait(30)
    app.close()
finally:
    run.amqp_cleanup(tmp)
