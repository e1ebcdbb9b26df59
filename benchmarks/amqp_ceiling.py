"""How fast RabbitMQ itself takes messages on this machine, and what the confirm window does.

``.venv/bin/python benchmarks/amqp_ceiling.py [--n 5000] [--rounds 3]``

``run.py``'s publishing figure is ``delay()`` calls per second from one thread; with
confirms on (celeriac's default), a caller that gets ``confirm_window`` messages ahead of
RabbitMQ's confirms waits for them. This script measures, on ``BENCH_AMQP_URL`` (on a local
server, a vhost of the run's own, as ``run.py`` makes one, deleted afterwards), each round on
a fresh durable queue holding nothing else:

1. **pika, no confirms**: a ``BlockingConnection`` publishing persistent messages with
   Celery's protocol-2 headers, as Dramatiq and Celery (without ``confirm_publish``)
   publish. *caller*: the publishing loop; *in queue*: until the queue holds all of them,
   which is RabbitMQ's own rate for such messages, whoever sends them.
2. **celeriac, default window** (1,000) and **celeriac, window > N**: ``delay()`` from one
   thread; *caller*: the loop; *confirmed*: until ``flush()`` returns (every message
   confirmed by RabbitMQ). With the larger window the caller never waits for confirms.

With the broker on this machine, RabbitMQ's CPU time per message (``utime + stime`` of the
``beam.smp`` process, from ``/proc``) is printed too: on two cores, RabbitMQ and the
publishing process share them. Printed: medians over ``--rounds`` rounds, alternating the
three publishers.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_celeriac  # noqa: E402 - lives beside this script, put on the path just above
import run  # noqa: E402

from celeriac_amqp.testing import connection_parameters  # noqa: E402
from celeriac_amqp.testing import delete_queues  # noqa: E402

DEFAULT_WINDOW = 1000
HEADERS = {
    "lang": "py",
    "task": bench_celeriac.TASK_NAME,
    "shadow": None,
    "eta": None,
    "expires": None,
    "group": None,
    "group_index": None,
    "retries": 0,
    "timelimit": [None, None],
    "parent_id": None,
    "argsrepr": "()",
    "kwargsrepr": "{}",
    "origin": "gen1@bench",
    "ignore_result": False,
    "stamped_headers": None,
    "stamps": {},
}
BODY = b'[[], {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]'


def broker_cpu() -> Callable[[], float] | None:
    """Seconds of CPU RabbitMQ's ``beam.smp`` has used so far, when it runs on this machine."""
    found = subprocess.run(["pgrep", "-f", "beam.smp"], capture_output=True, text=True, check=False)
    pids = found.stdout.split()
    if len(pids) != 1:
        return None
    stat = Path(f"/proc/{pids[0]}/stat")
    ticks = os.sysconf("SC_CLK_TCK")

    def read() -> float:
        fields = stat.read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / ticks

    return read


def pika_round(url: str, queue: str, n: int) -> tuple[float, float]:
    """Rates of the publishing loop and until the queue holds all ``n`` messages."""
    import pika

    connection = pika.BlockingConnection(connection_parameters(url))
    try:
        channel = connection.channel()
        channel.queue_declare(queue, durable=True)
        started = time.perf_counter()
        for _ in range(n):
            task_id = str(uuid.uuid4())
            properties = pika.BasicProperties(
                content_type="application/json",
                content_encoding="utf-8",
                delivery_mode=2,
                headers={**HEADERS, "id": task_id, "root_id": task_id},
            )
            channel.basic_publish("", queue, BODY, properties)
        looped = time.perf_counter() - started
        while channel.queue_declare(queue, durable=True, passive=True).method.message_count < n:
            time.sleep(0.005)  # polling RabbitMQ's count: this is the figure, not a test's wait
        return n / looped, n / (time.perf_counter() - started)
    finally:
        connection.close()


def celeriac_round(url: str, queue: str, n: int, window: int) -> tuple[float, float]:
    """Rates of the ``delay()`` loop and until every message is confirmed."""
    from celeriac import Celeriac

    plugins = json.dumps(bench_celeriac.plugins_for(url, "rpc://"))
    app = Celeriac(
        "bench",
        broker=url,
        config=False,
        env={"CELERIAC_PLUGINS__ENABLE": plugins},
        result_store="rpc://",
        amqp={"confirm_window": window},
    )
    try:
        task = app.task(name=bench_celeriac.TASK_NAME)(bench_celeriac.noop)
        task.apply_async(queue=queue)  # connects and declares the queue: not timed
        app.flush()
        started = time.perf_counter()
        for _ in range(n):
            task.apply_async(queue=queue)
        looped = time.perf_counter() - started
        app.flush()
        return n / looped, n / (time.perf_counter() - started)
    finally:
        app.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    tmp = Path(f"/tmp/amqp-ceiling-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    cpu = broker_cpu()
    big = args.n * 2
    publishers: dict[str, Callable[[str, str], tuple[float, float]]] = {
        "pika, no confirms (caller / in queue)": lambda url, q: pika_round(url, q, args.n),
        f"celeriac, window {DEFAULT_WINDOW} (caller / confirmed)": lambda url, q: celeriac_round(
            url, q, args.n, DEFAULT_WINDOW
        ),
        f"celeriac, window {big} (caller / confirmed)": lambda url, q: celeriac_round(url, q, args.n, big),
    }
    figures: dict[str, list[tuple[float, float, float | None]]] = {name: [] for name in publishers}
    try:
        url = run.amqp_url(tmp)
        for _ in range(args.rounds):
            for name, publish in publishers.items():
                queue = f"ceiling-{uuid.uuid4().hex[:8]}"
                before = cpu() if cpu else 0.0
                try:
                    loop, settled = publish(url, queue)
                finally:
                    delete_queues(url, [queue])
                used = (cpu() - before) / (args.n + 1) * 1e6 if cpu else None
                figures[name].append((loop, settled, used))
    finally:
        run.amqp_cleanup(tmp)
    load = os.getloadavg()[0]
    print(f"RabbitMQ's ceiling, N = {args.n}, medians of {args.rounds} rounds; load {load:.2f}")
    for name, rows in figures.items():
        loop = statistics.median(row[0] for row in rows)
        settled = statistics.median(row[1] for row in rows)
        used = [row[2] for row in rows if row[2] is not None]
        cost = f"; RabbitMQ CPU {statistics.median(used):.0f} us/message" if used else ""
        print(f"  {name:48s} {loop:8,.0f} / {settled:8,.0f} per s{cost}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
