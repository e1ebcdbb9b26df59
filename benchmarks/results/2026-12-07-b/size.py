import sys, uuid
sys.path.insert(0, "/work/main/benchmarks")
import bench_celeriac
for layout in ("kombu", None):
    prefix = f"sz-{uuid.uuid4().hex[:6]}:"
    app = bench_celeriac.make_app("redis://127.0.0.1:6379/14", prefix, None, layout)
    t = app.tasks[bench_celeriac.TASK_NAME]
    sent = []
    d = app.transport._direct
    import celeriac_redis._client as c
    orig = c.Direct.call_packed if hasattr(c, "Direct") else None
    r = t.delay()
    import redis
    rr = redis.Redis.from_url("redis://127.0.0.1:6379/14")
    for k in rr.scan_iter("*" + prefix + "*"):
        ty = rr.type(k)
        if ty == b"list": print(layout, k, len(rr.lindex(k, 0)), rr.lindex(k,0)[:2000])
        elif ty == b"stream":
            e = rr.xrange(k, count=1)
            print(layout, k, sum(len(a)+len(b) for a,b in e[0][1].items()), e[0][1])
        rr.delete(k)
    app.close()
