"""Messages awaiting confirms when a one-at-a-time publish to a pika consumer (amqp_hops.py hop 2) publishes; see pairs-f4352a0.txt."""
import sys, time, uuid, threading, collections, queue as q
sys.path.insert(0, "/work/main/benchmarks")
import run, bench_celeriac, pika
from pathlib import Path
from celeriac_amqp.testing import connection_parameters, delete_queues
from celeriac import Celeriac
import json
tmp = Path(f"/tmp/h-{uuid.uuid4().hex[:6]}"); tmp.mkdir()
url = run.amqp_url(tmp)
name = f"hop-{uuid.uuid4().hex[:6]}"
arr = q.Queue()
def consume():
    c = pika.BlockingConnection(connection_parameters(url)); ch = c.channel(); ch.queue_declare(name, durable=True)
    def on(ch_, m, p, b): arr.put(time.time()); ch_.basic_ack(m.delivery_tag)
    ch.basic_consume(name, on); ch.start_consuming()
threading.Thread(target=consume, daemon=True).start()
try:
    app = Celeriac("h", broker=url, config=False, env={"CELERIAC_PLUGINS__ENABLE": json.dumps(["amqp","json"])}, result_store="")
    t = app.task(name="x")(lambda: None)
    t.apply_async(queue=name); arr.get(timeout=30)
    pub = app.transport._publisher
    seen = collections.Counter(); lat = []
    for _ in range(600):
        seen[min(len(pub._tags), 10)] += 1
        s = time.time(); t.apply_async(queue=name); lat.append(arr.get(timeout=10) - s)
    lat.sort(); print(sorted(seen.items()), "p50 %.3f ms" % (lat[300]*1000))
    app.close()
finally:
    run.amqp_cleanup(tmp)
