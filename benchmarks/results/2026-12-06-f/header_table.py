# Ad hoc: the time of encode_table on the header table of one bench.noop message (timeit, 20,000 calls); run from the repository root.
import timeit, sys
sys.path.insert(0, "benchmarks")
import bench_celeriac
from celeriac_amqp import _table
app = bench_celeriac.make_app("amqp://guest:guest@127.0.0.1:5672//", None, "rpc://")
t = app.tasks[bench_celeriac.TASK_NAME]
msg = app.publisher.build(bench_celeriac.TASK_NAME, (), {})
env = app.codec.encode_task(msg, None)
h = env.headers
print({k: type(v).__name__ for k, v in h.items()})
n = 20000
print("encode_table us", timeit.timeit(lambda: _table.encode_table(h), number=n) / n * 1e6)
