import sys, time, uuid, os
from pathlib import Path
sys.path.insert(0, "/work/main/benchmarks")
import bench_celeriac, run
n = int(sys.argv[1]); enable = sys.argv[2] if len(sys.argv) > 2 else ""
if enable:
    os.environ["CELERIAC_PLUGINS__ENABLE"] = enable
tmp = Path(f"/tmp/pub-{uuid.uuid4().hex[:8]}"); tmp.mkdir()
try:
    url = run.amqp_url(tmp)
    app = bench_celeriac.make_app(url, None, "rpc://", None, None)
    if enable:
        from celeriac import Celeriac
        app = Celeriac("bench", broker=url, config=False, env={"CELERIAC_PLUGINS__ENABLE": enable}, result_store="rpc://")
        app.task(name=bench_celeriac.TASK_NAME)(bench_celeriac.noop)
    t = app.tasks[bench_celeriac.TASK_NAME]
    t.delay(); app.flush()
    for rnd in range(3):
        s = time.perf_counter()
        for _ in range(n): t.delay()
        e = time.perf_counter() - s
        app.flush()
        print(f"round {rnd}: {n/e:,.0f}/s (caller), {n/(time.perf_counter()-s):,.0f}/s confirmed", flush=True)
    print(sorted(app.plugins.names()) if hasattr(app.plugins, "names") else "")
    app.close()
finally:
    run.amqp_cleanup(tmp)
