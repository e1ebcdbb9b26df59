"""Where a round trip on RabbitMQ goes: the broker's own hop, publishing, the worker, the result.

``.venv/bin/python benchmarks/amqp_hops.py [--m 300]``

Each figure is the median over ``M`` messages sent one at a time, back to back as
``run.py``'s round trips: the next message goes once the last one arrived (the pika
consumer says so through a Redis list, ``BENCH_REDIS_URL``, under the run's prefix), on one
RabbitMQ (``BENCH_AMQP_URL``; on a local server, a vhost of the run's own, as ``run.py``
makes one), deleted afterwards; clocks are ``time.time()`` in processes of one machine.
(An earlier version sent them 3 ms apart, which measured processes waking from idle too:
the broker's hop read 0.5-1.2 ms that way, 0.3-0.4 ms back to back.)

1. **broker**: pika publishes (persistent, confirms on) to a plain pika consumer in another
   process; from just before the publish to the consumer's callback. No client library can
   go below this hop.
2. **celeriac publish**: celeriac's ``apply_async()`` (through its confirm window) to the
   same pika consumer: the broker's hop plus celeriac's publishing.
3. **to task start**: ``delay()`` to the task starting in a celeriac worker (``-P threads
   -c 4``): the above plus the worker's hops (its I/O thread, the consumer, a pool thread).
4. **result**: from the task's start to the client holding its result, with ``rpc://`` and
   with the local Redis (``BENCH_REDIS_URL``, by default db 14, under the run's prefix) as
   result store.

This module is also the app the worker loads (``-A amqp_hops``), configured by environment.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run  # noqa: E402 - lives beside this script, put on the path just above

from celeriac_amqp.testing import connection_parameters  # noqa: E402
from celeriac_amqp.testing import delete_queues  # noqa: E402


def make_app(url: str, result_store: str, prefix: str) -> Any:
    from celeriac import Celeriac

    app = Celeriac(
        "hops",
        broker=url,
        config=False,
        env={},
        result_store=result_store,
        redis={"result_key_prefix": prefix},
    )

    @app.task(name="hops.stamp")
    def stamp(sent: float | None = None) -> float:
        return time.time()

    return app


app: Any = None
if "HOPS_BROKER_URL" in os.environ:
    app = make_app(os.environ["HOPS_BROKER_URL"], os.environ["HOPS_RESULT_STORE"], os.environ["HOPS_PREFIX"])


def consume(url: str, queue: str, m: int, arrivals: str) -> None:
    """A plain pika consumer: push each message's latency (its sender's stamp to this
    callback) to the Redis list ``arrivals``, which also tells the sender to send the next."""
    import pika
    import redis

    lists = redis.Redis.from_url(run.redis_url())
    connection = pika.BlockingConnection(connection_parameters(url))
    channel = connection.channel()
    channel.queue_declare(queue, durable=True)
    seen = 0

    def on_message(ch: Any, method: Any, properties: Any, body: bytes) -> None:
        nonlocal seen
        arrived = time.time()
        lists.rpush(arrivals, (arrived - json.loads(body)[0][0]) * 1000)
        ch.basic_ack(method.delivery_tag)
        seen += 1
        if seen >= m:
            ch.stop_consuming()

    channel.basic_consume(queue, on_message)
    print("ready", flush=True)
    channel.start_consuming()
    channel.queue_delete(queue)
    connection.close()


def to_consumer(url: str, sender: str, m: int, prefix: str) -> float:
    """Median ms from ``sender``'s publish to a pika consumer's callback, one at a time."""
    import redis

    queue = f"hops-{uuid.uuid4().hex[:8]}"
    arrivals = f"{prefix}{queue}"
    lists = redis.Redis.from_url(run.redis_url())
    command = [sys.executable, __file__, "--consume", queue, "--url", url, "--m", str(m), "--list", arrivals]
    consumer = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    latencies: list[float] = []

    def arrived() -> None:
        got = lists.blpop([arrivals], timeout=10)
        if got is None:
            raise SystemExit("the pika consumer received nothing for 10 s")
        latencies.append(float(got[1]))

    try:
        assert consumer.stdout is not None
        if consumer.stdout.readline().strip() != "ready":
            raise SystemExit("the pika consumer did not start")
        if sender == "pika":
            import pika

            connection = pika.BlockingConnection(connection_parameters(url))
            channel = connection.channel()
            channel.confirm_delivery()
            persistent = pika.BasicProperties(delivery_mode=2, content_type="application/json")
            for _ in range(m):
                channel.basic_publish("", queue, json.dumps([[time.time()], {}, {}]), persistent)
                arrived()
            connection.close()
        else:
            client = make_app(url, "", "")
            stamp = client.tasks["hops.stamp"]
            for _ in range(m):
                stamp.apply_async((time.time(),), queue=queue)
                arrived()
            client.flush(timeout=30)
            client.close()
        consumer.wait(timeout=60)
        return statistics.median(latencies)
    finally:
        if consumer.poll() is None:
            consumer.kill()
        lists.delete(arrivals)


def through_worker(url: str, result_store: str, prefix: str, m: int) -> tuple[float, float]:
    """Median ms from ``delay()`` to the task's start, and from its start to the result here."""
    queue = f"hops-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "HOPS_BROKER_URL": url,
        "HOPS_RESULT_STORE": result_store,
        "HOPS_PREFIX": prefix,
        "PYTHONPATH": str(HERE),
    }
    command = [sys.executable, "-m", "celeriac", "-A", "amqp_hops", "worker", "-P", "threads", "-c", "4"]
    client = make_app(url, result_store, prefix)
    stamp = client.tasks["hops.stamp"]
    with tempfile.TemporaryFile() as log:
        worker = subprocess.Popen(
            [*command, "-Q", queue], env=env, cwd=HERE, stdout=log, stderr=log, start_new_session=True
        )
        try:
            try:
                stamp.apply_async(queue=queue).get(timeout=60)  # the worker is up and warm
            except Exception:
                log.seek(0)
                sys.stderr.write(log.read().decode(errors="replace"))
                raise
            to_start: list[float] = []
            to_result: list[float] = []
            for _ in range(m):
                sent = time.time()
                started = stamp.apply_async(queue=queue).get(timeout=10)
                done = time.time()
                to_start.append((started - sent) * 1000)
                to_result.append((done - started) * 1000)
            return statistics.median(to_start), statistics.median(to_result)
        finally:
            run.stop_worker(worker)
            delete_queues(url, [queue])
            client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--m", type=int, default=300, help="messages per measurement")
    parser.add_argument("--consume", metavar="QUEUE", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--list", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.consume:
        consume(args.url, args.consume, args.m, args.list)
        return
    # run.py's conventions: a vhost of the run's own on a local server, results under its prefix.
    tmp = Path(tempfile.mkdtemp(prefix="amqp-hops-"))
    (tmp / ".redis-results").touch()  # run.amqp_cleanup deletes the prefix's keys too
    url, prefix = run.amqp_url(tmp), run.redis_prefix(tmp)
    try:
        print(f"RabbitMQ hops, medians of {args.m} messages; load {os.getloadavg()[0]:.2f}")
        broker = to_consumer(url, "pika", args.m, prefix)
        print(f"1. broker (pika -> pika consumer):              {broker:.2f} ms")
        published = to_consumer(url, "celeriac", args.m, prefix)
        print(f"2. celeriac publish -> pika consumer:           {published:.2f} ms")
        for label, store in (("rpc://", "rpc://"), ("Redis", run.redis_url())):
            start, result = through_worker(url, store, prefix, args.m)
            print(f"3. delay() -> task start in a celeriac worker:  {start:.2f} ms  (results on {label})")
            print(f"4. task start -> result at the client:          {result:.2f} ms  (results on {label})")
        print(f"load {os.getloadavg()[0]:.2f}")
    finally:
        run.amqp_cleanup(tmp)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
