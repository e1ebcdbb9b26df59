# Diagnostic kept as a record (window-waits.txt): three rounds of N delay() calls on RabbitMQ with [amqp] confirm_window = W; printed: the rate and the time the caller spent waiting on the publisher's condition (the window full). Run: .venv/bin/python benchmarks/results/2026-12-06-h/window_waits.py 5000 1000.
import sys, time, uuid, os, threading
from pathlib import Path
sys.path.insert(0, "/work/main/benchmarks")
import bench_celeriac, run
from celeriac_amqp import _publisher
waits = [0, 0.0]
orig = threading.Condition.wait
def w(self, timeout=None):
    s = time.perf_counter(); r = orig(self, timeout); waits[0] += 1; waits[1] += time.perf_counter() - s; return r
threading.Condition.wait = w
tmp = Path(f"/tmp/pub-{uuid.uuid4().hex[:8]}"); tmp.mkdir()
n = int(sys.argv[1])
try:
    url = run.amqp_url(tmp)
    from celeriac import Celeriac
    import json
    W = int(sys.argv[2])
    app = Celeriac("bench", broker=url, config=False, env={"CELERIAC_PLUGINS__ENABLE": json.dumps(bench_celeriac.plugins_for(url, "rpc://"))}, result_store="rpc://", amqp={"confirm_window": W})
    app.task(name=bench_celeriac.TASK_NAME)(bench_celeriac.noop)
    t = app.tasks[bench_celeriac.TASK_NAME]
    t.delay(); app.flush()
    for rnd in range(3):
        waits[:] = [0, 0.0]
        s = time.perf_counter()
        for _ in range(n): t.delay()
        e = time.perf_counter() - s
        print(f"W={W} n={n} round {rnd}: {n/e:,.0f}/s; condition waits {waits[0]} totalling {waits[1]*1000:.0f} ms of {e*1000:.0f} ms", flush=True)
        app.flush()
    app.close()
finally:
    run.amqp_cleanup(tmp)
