import timeit, uuid, sys
from celeriac_amqp._table import encode_table, decode_table
from celeriac_amqp._properties import AmqpProperties
from celeriac_amqp._frames import content
import celeriac_amqp._wire as wire
sys.path.insert(0, "/work/main/benchmarks")
import bench_celeriac
app = bench_celeriac.make_app("amqp://guest:guest@127.0.0.1:5672/%2F", None, "rpc://", None, None)
msg = app.publisher.build("bench.noop", (), {})
env = app.codec.encode_task(msg, None)
c = content(env, 0)
props_bytes = c.header[12:]
table = encode_table(env.headers)
print(len(env.headers), "headers,", len(table), "bytes of table;", len(props_bytes), "bytes of properties")
n = 20000
t = min(timeit.repeat(lambda: decode_table(table), number=n, repeat=5)) / n
print(f"decode_table: {t*1e6:.2f} us")
t = min(timeit.repeat(lambda: AmqpProperties().decode(props_bytes), number=n, repeat=5)) / n
print(f"AmqpProperties.decode: {t*1e6:.2f} us")
p = AmqpProperties().decode(props_bytes)
t = min(timeit.repeat(lambda: wire.envelope(p, c.body), number=n, repeat=5)) / n
print(f"wire.envelope: {t*1e6:.2f} us")
from celeriac.plugin import Envelope
h = dict(p.headers)
t = min(timeit.repeat(lambda: Envelope(body=b"x", content_type="application/json", content_encoding="utf-8", headers=h, properties={}), number=n, repeat=5)) / n
print(f"Envelope(): {t*1e6:.2f} us")
t = min(timeit.repeat(lambda: {k: v for k, v in h.items() if not k.startswith(wire._BROKER_HEADERS) and k not in wire._DEAD_HEADERS}, number=n, repeat=5)) / n
print(f"header filter: {t*1e6:.2f} us")
t = min(timeit.repeat(lambda: AmqpProperties(), number=n, repeat=5)) / n
print(f"AmqpProperties(): {t*1e6:.2f} us")
