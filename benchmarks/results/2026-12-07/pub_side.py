"""One side of pub_pair.py: on each 'go N', N delay() calls and a flush (no worker); prints
calls per second until the loop returned and until all were confirmed; purges the queue."""
import os, sys, time, uuid, json
from pathlib import Path
sys.path.insert(0, "/work/main/benchmarks")
import bench_celeriac, run
tmp = Path(f"/tmp/pubside-{uuid.uuid4().hex[:8]}"); tmp.mkdir()
try:
    url = run.amqp_url(tmp)
    app = bench_celeriac.make_app(url, None, "rpc://", None, None)
    t = app.tasks[bench_celeriac.TASK_NAME]
    for _ in range(200): t.delay()
    app.flush()
    print("ready", flush=True)
    for line in sys.stdin:
        n = int(line.split()[1])
        app.transport.purge(app.config.default_queue)
        s = time.perf_counter()
        for _ in range(n): t.delay()
        loop = time.perf_counter() - s
        app.flush()
        done = time.perf_counter() - s
        print(json.dumps([n / loop, n / done]), flush=True)
    app.close()
finally:
    run.amqp_cleanup(tmp)
