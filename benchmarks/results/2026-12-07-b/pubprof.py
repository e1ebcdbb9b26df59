"""A run.py-like publish loop on RabbitMQ (rpc://, handles kept), for py-spy."""
import json, sys, time, uuid
sys.path.insert(0, "/work/main/benchmarks")
import run, bench_celeriac
from pathlib import Path
from celeriac_amqp.testing import delete_queues
n = int(sys.argv[1]); rounds = int(sys.argv[2])
tmp = Path(f"/tmp/t-{uuid.uuid4().hex[:6]}"); tmp.mkdir()
url = run.amqp_url(tmp)
try:
    for r in range(rounds):
        app = bench_celeriac.make_app(url, None, "rpc://")
        task = app.tasks[bench_celeriac.TASK_NAME]
        q = f"pp-{uuid.uuid4().hex[:6]}"
        task.apply_async(queue=q); app.flush()
        handles = []
        t = time.perf_counter()
        for _ in range(n):
            handles.append(task.apply_async(queue=q))
        loop = time.perf_counter() - t
        app.flush()
        print(f"loop {n/loop:,.0f}/s confirmed {n/(time.perf_counter()-t):,.0f}/s", flush=True)
        app.close()
        delete_queues(url, [q])
finally:
    run.amqp_cleanup(tmp)
