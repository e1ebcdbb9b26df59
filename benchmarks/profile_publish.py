"""Where a ``delay()`` loop spends its time: cProfile over N publishes from one thread.

``.venv/bin/python benchmarks/profile_publish.py --broker amqp|redis|kombu [--n 3000]
[--confirms async|strict] [--top 20]``

``redis`` is celeriac's streams layout and ``kombu`` its kombu layout, both on
``BENCH_REDIS_URL`` (db 14 of the local Redis) under a fresh key prefix; ``amqp`` is the local
RabbitMQ (``BENCH_AMQP_URL``) on a vhost of its own, results ``rpc://`` as in ``run.py``.
One untimed task opens the connections first. Printed: the rate with the profiler on (it
slows Python down, so compare runs of this script, not with ``run.py``), the Python calls
per ``delay()``, and the functions by cumulative time. Only the publishing thread is
profiled: on RabbitMQ the I/O threads (see ``celeriac_amqp._publisher``) run beside it.
Everything the run created is deleted afterwards.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_celeriac  # noqa: E402 - lives beside this script, put on the path just above
import run  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--broker", choices=("amqp", "redis", "kombu"), default="amqp")
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--confirms", choices=("async", "strict"), default="async")
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args()
    tmp = Path(f"/tmp/profile-publish-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    try:
        if args.broker == "amqp":
            url, prefix, store = run.amqp_url(tmp), None, "rpc://"
        else:
            url, prefix, store = run.redis_url(), run.redis_prefix(tmp), None
        layout = "kombu" if args.broker == "kombu" else None
        confirms = args.confirms if args.broker == "amqp" else None
        app = bench_celeriac.make_app(url, prefix, store, layout, confirms)
        task = app.tasks[bench_celeriac.TASK_NAME]
        task.delay()
        app.flush()
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        for _ in range(args.n):
            task.delay()
        profiler.disable()
        elapsed = time.perf_counter() - started
        app.flush()
        app.close()
        stats = pstats.Stats(profiler, stream=(out := io.StringIO()))
        calls = stats.total_calls  # type: ignore[attr-defined]
        print(
            f"{args.broker} ({args.confirms if args.broker == 'amqp' else 'no confirms'}): "
            f"{args.n / elapsed:,.0f} delay()/s under the profiler, {calls / args.n:.0f} Python calls "
            f"per delay(), load {os.getloadavg()[0]:.1f}"
        )
        stats.sort_stats("cumulative").print_stats(args.top)
        print(out.getvalue())
    finally:
        (run.amqp_cleanup if args.broker == "amqp" else run.redis_cleanup)(tmp)
        for path in tmp.iterdir():
            path.unlink()
        tmp.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
