"""As kombu_pub.py, but the first handle's ready() is called before the timed loops, as run.py does."""
import sys, time, uuid
sys.path.insert(0, "/work/main/benchmarks")
import bench_celeriac
layout = sys.argv[1]; n = int(sys.argv[2])
prefix = f"kp-{uuid.uuid4().hex[:6]}:"
app = bench_celeriac.make_app("redis://127.0.0.1:6379/14", prefix, None, layout if layout != "streams" else None)
t = app.tasks[bench_celeriac.TASK_NAME]
t.delay().ready()
for r in range(3):
    hs = []
    s = time.perf_counter()
    for _ in range(n): hs.append(t.delay())
    print(layout, f"{n/(time.perf_counter()-s):,.0f}/s", flush=True)
import redis
r = redis.Redis.from_url("redis://127.0.0.1:6379/14")
for k in r.scan_iter("*" + prefix + "*"): r.delete(k)
app.close()
