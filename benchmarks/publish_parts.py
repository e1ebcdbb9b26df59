"""What each part of a ``delay()`` costs on its own, without a broker.

``.venv/bin/python benchmarks/publish_parts.py [--n 20000] [--repeats 5]``

``timeit`` of each step the publishing thread takes for one no-op task, on a ``memory://``
app (nothing leaves the process): building the message, the publish hooks (before and
after), encoding the body, encoding the AMQP content header (properties and header table,
``celeriac_amqp._frames.content``) and the ``uuid4`` task id. The hooks are measured twice:
with every installed plugin loaded, and with ``[plugins] enable = ["json"]`` (no plugin
that implements them). Printed: the median over ``--repeats`` runs of ``--n`` calls, in
microseconds per call. The hand-off to the publishing thread and the socket write are not
here: ``profile_publish.py`` and ``run.py`` measure a whole ``delay()``.
"""

from __future__ import annotations

import argparse
import statistics
import timeit
import uuid
from collections.abc import Callable

from celeriac import Celeriac
from celeriac_amqp._frames import content


def app(plugins: list[str] | None) -> Celeriac:
    env = {} if plugins is None else {"CELERIAC_PLUGINS__ENABLE": str(plugins).replace("'", '"')}
    built = Celeriac("parts", broker="memory://", config=False, env=env)
    built.task(name="parts.noop")(lambda: None)
    return built


def per_call(fn: Callable[[], object], n: int, repeats: int) -> float:
    """Median microseconds per call over ``repeats`` runs of ``n`` calls."""
    return statistics.median(timeit.timeit(fn, number=n) / n * 1e6 for _ in range(repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000, help="calls per run")
    parser.add_argument("--repeats", type=int, default=5, help="runs per part; the median is printed")
    args = parser.parse_args()
    everything, bare = app(None), app(["json"])
    message = everything.publisher.build("parts.noop", (), {})
    envelope = everything.codec.encode_task(message, None)

    def hooks(of: Celeriac) -> Callable[[], None]:
        lifecycle = of.plugins.lifecycle

        def both() -> None:
            lifecycle.before_publish(message, "celery", of)
            lifecycle.after_publish(message, "celery", of)

        return both

    parts: list[tuple[str, Callable[[], object]]] = [
        ("build the message", lambda: everything.publisher.build("parts.noop", (), {})),
        ("publish hooks, every installed plugin", hooks(everything)),
        ('publish hooks, [plugins] enable = ["json"]', hooks(bare)),
        ("encode the body (codec)", lambda: everything.codec.encode_task(message, None)),
        ("AMQP content header (properties, header table)", lambda: content(envelope, 0)),
        ("uuid4 task id", lambda: str(uuid.uuid4())),
    ]
    print(f"microseconds per call, median of {args.repeats} runs of {args.n:,}")
    for label, fn in parts:
        print(f"  {label:<50} {per_call(fn, args.n, args.repeats):6.1f}")


if __name__ == "__main__":
    main()
