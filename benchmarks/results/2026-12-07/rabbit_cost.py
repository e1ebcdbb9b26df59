"""RabbitMQ's CPU per message, one at a time (a consumer waiting, as in a round trip): pika
publishes a persistent message on one connection, with or without confirms, a small body
(Dramatiq's shape) or Celery's protocol-2 headers; a consumer on another connection takes
and acks it before the next is sent. Median of rounds; RabbitMQ's CPU from /proc."""
import os, sys, time, uuid, subprocess, statistics, json
import pika
sys.path.insert(0, "/work/main/benchmarks")
import run
from pathlib import Path
n = int(sys.argv[1])
rabbit = int(subprocess.run(["pgrep", "-f", "beam.smp"], capture_output=True, text=True).stdout.split()[0])
def cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
tid = str(uuid.uuid4())
celery_headers = {"lang": "py", "task": "bench.noop", "id": tid, "shadow": None, "eta": None, "expires": None,
    "group": None, "group_index": None, "retries": 0, "timelimit": [None, None], "root_id": tid, "parent_id": None,
    "argsrepr": "()", "kwargsrepr": "{}", "origin": "gen1234@host", "ignore_result": False, "replaced_task_nesting": 0, "stamped_headers": None, "stamps": {}}
celery_body = json.dumps([[], {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]).encode()
dramatiq_body = json.dumps({"queue_name": "default", "actor_name": "bench_noop", "args": [], "kwargs": {}, "options": {}, "message_id": tid, "message_timestamp": 1}).encode()
tmp = Path(f"/tmp/rcost-{uuid.uuid4().hex[:8]}"); tmp.mkdir()
try:
    url = run.amqp_url(tmp)
    params = pika.URLParameters(url)
    for confirms in (False, True):
        for shape in (("dramatiq", "celery") if not confirms else ("dramatiq", "celery", "celery+reply")):
            pub = pika.BlockingConnection(params); pc = pub.channel()
            if confirms:
                pc._impl.confirm_delivery(lambda frame: None)
                pub.process_data_events(0.2)
            con = pika.BlockingConnection(params); cc = con.channel()
            q = f"cost-{uuid.uuid4().hex[:6]}"
            cc.queue_declare(q, durable=True)
            cc.basic_qos(prefetch_count=8)
            got = []
            if shape == "celery+reply":  # and a transient reply to a queue the publisher consumes
                rq = f"reply-{uuid.uuid4().hex[:6]}"
                pc.queue_declare(rq, durable=True)
                reply_props = pika.BasicProperties(content_type="application/json", content_encoding="utf-8", delivery_mode=1, correlation_id=tid)
                def on_task(ch, m, p, b):
                    ch.basic_ack(m.delivery_tag)
                    ch.basic_publish("", rq, b'{"status": "SUCCESS", "result": null}', reply_props)
                cc.basic_consume(q, on_task)
                pc.basic_consume(rq, lambda ch, m, p, b: got.append(1), auto_ack=True)
            else:
                cc.basic_consume(q, lambda ch, m, p, b: (ch.basic_ack(m.delivery_tag), got.append(1)))
            if shape.startswith("celery"):
                props = pika.BasicProperties(content_type="application/json", content_encoding="utf-8", headers=celery_headers, delivery_mode=2, priority=0, correlation_id=tid, reply_to=str(uuid.uuid4()))
                body = celery_body
            else:
                props = pika.BasicProperties(delivery_mode=2, priority=0)
                body = dramatiq_body
            rates = []
            for rnd in range(4):
                r0 = cpu(rabbit); s = time.perf_counter()
                for i in range(n):
                    if confirms:  # the confirm not waited for, as celeriac's window does
                        pc._impl.basic_publish("", q, body, props)
                        pub.process_data_events(0)
                    else:
                        pc.basic_publish("", q, body, props)
                    want = len(got) + 1
                    while len(got) < want:
                        con.process_data_events(time_limit=None if shape != "celery+reply" else 0)
                        if shape == "celery+reply":
                            pub.process_data_events(0)
                if confirms: pub.process_data_events(0.2)
                wall = time.perf_counter() - s; rc = cpu(rabbit) - r0
                if rnd: rates.append((rc / n * 1e6, wall / n * 1e6))
            print(f"confirms={confirms!s:5} {shape:8}: RabbitMQ CPU {statistics.median(r for r, _ in rates):.0f} us per message, one at a time {statistics.median(w for _, w in rates):.0f} us")
            cc.queue_delete(q); pub.close(); con.close()
finally:
    run.amqp_cleanup(tmp)
