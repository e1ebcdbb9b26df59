"""celeriac-memcached against a real memcached of the test's own: the KeyValue contract, URLs,
values over the item size failing their task with the reason, an unreachable server named in
the error, and Celery's cache backend reading celeriac's results and the reverse."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

import celeriac.testing
from celeriac import Celeriac
from celeriac import states
from celeriac.plugin import ConfigError
from celeriac.plugin import StoreUnreachableError
from celeriac.plugin import ValueRefusedError
from celeriac.testing import check_key_value
from celeriac.testing import worker_thread
from celeriac_memcached import MemcachedKeyValue
from celeriac_memcached._kv import safe_key
from celeriac_memcached._kv import servers_of
from celeriac_memcached._kv import ttl
from celeriac_memcached.testing import MemcachedServer
from celeriac_memcached.testing import free_port
from celeriac_memcached.testing import memcached_server


@pytest.fixture(scope="module")
def server() -> Iterator[MemcachedServer]:
    with memcached_server() as running:
        yield running


def make_app(url: str, **settings: Any) -> Celeriac:
    return Celeriac(
        "mctests",
        broker="memory://",
        result_store=url,
        plugins=[celeriac.testing],
        env={},
        config=False,
        **settings,
    )


def test_contract(server: MemcachedServer) -> None:
    kv = MemcachedKeyValue(server.url)
    check_key_value(kv)
    kv.close()


def test_urls_keys_and_expiry() -> None:
    assert servers_of("memcached://127.0.0.1:11211") == [("127.0.0.1", 11211)]
    assert servers_of("memcached://a:1;b:2/") == [("a", 1), ("b", 2)]
    assert servers_of("memcache://cachehost") == [("cachehost", 11211)]
    with pytest.raises(ConfigError, match="host:port"):
        servers_of("memcached://")
    assert safe_key("celery-task-meta-abc") == "celery-task-meta-abc"
    assert safe_key("celery-task-meta-with space").startswith("celeriac-sha256-")
    assert safe_key("x" * 300).startswith("celeriac-sha256-")
    assert ttl(None) == 0 and ttl(0.2) == 1 and ttl(86400) == 86400
    assert ttl(60 * 24 * 3600) > 1_000_000_000  # past 30 days memcached wants a Unix time


def test_keys_spread_over_two_servers(server: MemcachedServer) -> None:
    with memcached_server() as second:
        kv = MemcachedKeyValue(f"{server.url};{second.url.removeprefix('memcached://')}")
        keys = [f"spread-{n}" for n in range(200)]
        for key in keys:
            kv.set(key, key.encode(), 60)
        assert kv.get_many(keys) == [key.encode() for key in keys]
        alone = MemcachedKeyValue(second.url)
        held = sum(value is not None for value in alone.get_many(keys))
        assert 40 < held < 160, f"the second server holds {held} of 200 keys"
        for key in keys:
            kv.delete(key)
        kv.close()
        alone.close()


def test_a_result_over_the_item_size_fails_its_task_with_the_reason(server: MemcachedServer) -> None:
    app = make_app(server.url, memcached={"max_item_size": 10_000})

    @app.task
    def big(n: int) -> str:
        return "x" * n

    with worker_thread(app, concurrency=1):
        assert big.delay(100).get(timeout=10) == "x" * 100
        result = big.delay(20_000)
        with pytest.raises(ValueRefusedError, match=r"over memcached's item size \(10,000 bytes"):
            result.get(timeout=10)
    assert result.state == states.FAILURE
    app.close()


def test_the_server_refusing_a_large_value_is_reported_too(server: MemcachedServer) -> None:
    kv = MemcachedKeyValue(server.url, max_item_size=8 * 1024 * 1024)  # larger than the server takes
    with pytest.raises(ValueRefusedError, match="refused a value of 2,097,152 bytes"):
        kv.set("too-large", b"x" * (2 * 1024 * 1024), 60)
    assert kv.get("too-large") is None
    kv.close()


def test_an_unreachable_server_is_named() -> None:
    app = make_app(f"memcached://127.0.0.1:{free_port()}", memcached={"connect_timeout": 0.5})
    with pytest.raises(
        StoreUnreachableError, match=r"cannot reach the result store memcached://127\.0\.0\.1:\d+"
    ):
        app.AsyncResult("x").state  # noqa: B018 - reading the state is the test
    app.close()


def test_workflows(server: MemcachedServer) -> None:
    app = make_app(server.url, memcached={"key_prefix": "wf-"})

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    @app.task
    def total(values: list[int]) -> int:
        return sum(values)

    from celeriac import chord

    with worker_thread(app, concurrency=8):
        assert chord((add.s(n, 0) for n in range(200)), total.s()).apply_async().get(timeout=30) == sum(
            range(200)
        )
    app.close()


CELERY_READS = """
import json, sys
from celery import Celery
app = Celery("interop", backend="cache+memcached://127.0.0.1:%s/")
app.conf.result_serializer = "json"
ok, failed = sys.argv[1], sys.argv[2]
print(json.dumps([app.AsyncResult(ok).get(timeout=5), app.AsyncResult(failed).state,
                  type(app.AsyncResult(failed).result).__name__]))
app.backend.store_result("from-celery-" + ok, {"a": [1, 2]}, "SUCCESS")
"""


def test_celery_reads_what_celeriac_wrote_and_the_reverse(server: MemcachedServer) -> None:
    pytest.importorskip("memcache")
    app = make_app(server.url)

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    @app.task
    def boom() -> None:
        raise KeyError("missing")

    with worker_thread(app, concurrency=2):
        ok, failed = add.delay(20, 22), boom.delay()
        assert ok.get(timeout=10) == 42
        assert failed.get(timeout=10, propagate=False) is not None
    # Celery in a process of its own: its cache backend keeps a module-level client.
    out = subprocess.run(
        [sys.executable, "-c", CELERY_READS % server.port, ok.id, failed.id],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert out.strip() == '[42, "FAILURE", "KeyError"]'
    assert app.AsyncResult(f"from-celery-{ok.id}").get(timeout=5) == {"a": [1, 2]}
    app.close()
