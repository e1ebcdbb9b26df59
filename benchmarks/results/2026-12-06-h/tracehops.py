# Diagnostic, not part of make bench: one round trip's stages on RabbitMQ (threads -c 4 worker, rpc:// results), from marks written with time.time_ns() by wrapped functions in the client and the worker; medians over 280 round trips (the first 20 dropped). Run as: cd /tmp/trace && python tracehops.py 300 (this file copied there); PYTHONPATH set to another tree's kernel/src and plugins/*/src measures that tree (client and worker).
"""Trace one round trip's stages on RabbitMQ (diagnostic, not kept)."""
import os, sys, time, functools, json, statistics, subprocess, uuid, tempfile
sys.path.insert(0, "/work/main/benchmarks")
FD = None
def mark(label):
    os.write(FD, f"{label} {time.time_ns()}\n".encode())

def wrap(cls, name, before=None, after=None, only_if=None):
    orig = getattr(cls, name)
    @functools.wraps(orig)
    def w(*a, **k):
        if before: mark(before)
        r = orig(*a, **k)
        if after and (only_if is None or only_if(r)): mark(after)
        return r
    setattr(cls, name, w)

def install(path):
    global FD
    FD = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    from celeriac_amqp import _publisher, _transport, _rpc, _link
    wrap(_publisher.Publisher, "publish", after="C1_published")
    wrap(_publisher.Publisher, "_drain", before="C2_drain", after="C3_written")
    if hasattr(_publisher.Publisher, "_write_now"):
        wrap(_publisher.Publisher, "_write_now", after="C3_written", only_if=bool)
    wrap(_rpc.AmqpRpcResultStore, "_on_reply", before="C9_reply")
    from celeriac._client import publish as kpub, app as kapp
    wrap(kpub.Publisher, "build", before="C0a_build", after="C0b_built")
    wrap(_transport.AmqpTransport, "publish", before="C0c_tpublish")
    wrap(_publisher.Publisher, "publish", before="C0d_ppublish")
    wrap(_publisher.Publisher, "_write_now", before="C0e_writenow")
    wrap(_transport.AmqpTransport, "_on_message", before="W4_on_message")
    wrap(_transport.AmqpTransport, "fetch", after="W5_fetched", only_if=bool)
    wrap(_rpc.AmqpRpcResultStore, "store_deferred", before="W7_store_deferred")
    wrap(_link.Link, "write", before="W8_write", after="W8b_written")
    if hasattr(_link.Link, "write_now"):
        wrap(_link.Link, "write_now", before="W8_write", after="W8b_written", only_if=bool)
    wrap(_transport.AmqpTransport, "_send_acks", before="W9_acks")
    import celeriac_threads
    from celeriac._worker import consumer
    wrap(celeriac_threads.ThreadPool, "submit", before="W5b_submit")
    wrap(consumer.Consumer, "started", before="W5c_on_start")

app = None
if "HOPS_TRACE" in os.environ:
    install(os.environ["HOPS_TRACE"])
    from celeriac import Celeriac
    app = Celeriac("hops", broker=os.environ["HOPS_BROKER_URL"], config=False, env={}, result_store="rpc://")
    @app.task(name="hops.stamp")
    def stamp() -> float:
        mark("W6_start")
        return 0.0

if __name__ == "__main__":
    import run
    from celeriac_amqp.testing import delete_queues
    m = int(sys.argv[1])
    tmp = Path = None
    from pathlib import Path
    tmpd = Path(tempfile.mkdtemp())
    url = run.amqp_url(tmpd)
    wtrace = str(tmpd / "w.trace"); ctrace = str(tmpd / "c.trace")
    queue = f"hops-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "HOPS_BROKER_URL": url, "HOPS_TRACE": wtrace, "PYTHONPATH": "/tmp/trace:" + os.environ.get("PYTHONPATH", "")}
    worker = subprocess.Popen([sys.executable, "-m", "celeriac", "-A", "tracehops", "worker", "-P", "threads", "-c", "4", "-Q", queue], env=env, cwd="/tmp/trace", start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        install(ctrace)
        from celeriac import Celeriac
        client = Celeriac("hops", broker=url, config=False, env={}, result_store="rpc://")
        @client.task(name="hops.stamp")
        def stamp() -> float: return 0.0
        stamp.apply_async(queue=queue).get(timeout=60)
        for _ in range(m):
            mark("C0_delay")
            r = stamp.apply_async(queue=queue)
            r.get(timeout=10)
            mark("C10_got")
        client.close()
    finally:
        run.stop_worker(worker)
        delete_queues(url, [queue])
        run.amqp_cleanup(tmpd)
    ev = []
    for p in (ctrace, wtrace):
        for line in open(p):
            l, t = line.split(); ev.append((int(t), l))
    ev.sort()
    # split into rounds at C0
    rounds = []; cur = None
    for t, l in ev:
        if l == "C0_delay":
            cur = [(t, l)]; rounds.append(cur)
        elif cur is not None:
            cur.append((t, l))
    rounds = rounds[20:]
    order = ["C0_delay","C0a_build","C0b_built","C0c_tpublish","C0d_ppublish","C0e_writenow","C1_published","C2_drain","C3_written","W4_on_message","W5_fetched","W5b_submit","W5c_on_start","W6_start","W7_store_deferred","W8_write","W8b_written","C9_reply","C10_got"]
    deltas = {k: [] for k in order[1:]}
    for r in rounds:
        first = {}
        for t, l in r:
            first.setdefault(l, t)
        have = [k for k in order if k in first]
        if "C0_delay" not in first or "C10_got" not in first: continue
        for a, b in zip(have, have[1:]):
            deltas[b].append((first[b] - first[a]) / 1000)
        deltas.setdefault("total", []).append((first["C10_got"] - first["C0_delay"]) / 1000)
    for k, v in deltas.items():
        if len(v) < 10: continue
        print(f"{k:20s} median {statistics.median(v):8.1f} us  p25 {statistics.quantiles(v, n=4)[0]:8.1f}  (n={len(v)})")
