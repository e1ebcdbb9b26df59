"""The hot path's connections: a free list of redis-py connections, scripts by SHA, kernel timeouts."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator

import pytest
import redis

from celeriac_redis import RedisConfig
from celeriac_redis._client import Direct
from celeriac_redis._client import Lua
from celeriac_redis._client import make_client

from .conftest import make_config


@pytest.fixture
def direct(redis_url: str, prefix: str) -> Iterator[Direct]:
    settings = make_config(prefix, socket_timeout=0.3, retry_attempts=1).section("redis", RedisConfig)
    client = make_client(redis_url, settings)
    direct = Direct(client, settings)
    yield direct
    direct.close()
    client.close()


def test_commands_pipelines_and_error_replies(direct: Direct, prefix: str) -> None:
    assert direct.call("SET", f"{prefix}k", "v") in (b"OK", True)
    assert direct.call("GET", f"{prefix}k") == b"v"
    replies = direct.calls([("INCR", f"{prefix}n"), ("LPUSH", f"{prefix}k", "x"), ("INCR", f"{prefix}n")])
    assert replies[0] == 1 and isinstance(replies[1], redis.ResponseError) and replies[2] == 2
    with pytest.raises(redis.ResponseError):
        direct.call("LPUSH", f"{prefix}k", "x")
    assert direct.call("GET", f"{prefix}k") == b"v"  # the connection is still in step


def test_scripts_are_loaded_when_the_server_does_not_know_them(direct: Direct, prefix: str) -> None:
    lua = Lua(f"return {{KEYS[1], ARGV[1], '{os.urandom(8).hex()}'}}")  # a script Redis never saw
    assert direct.run(lua, [f"{prefix}a"], ["1"])[:2] == [f"{prefix}a".encode(), b"1"]
    other = Lua(f"return '{os.urandom(8).hex()}'")
    replies = direct.run_many([(lua, [f"{prefix}b"], ["2"]), (other, [], [])])
    assert replies[0][:2] == [f"{prefix}b".encode(), b"2"] and isinstance(replies[1], bytes)


def test_a_reply_later_than_the_socket_timeout_is_a_broken_connection(
    direct: Direct, redis_url: str, prefix: str
) -> None:
    if sys.platform.startswith("linux") and not redis_url.startswith("rediss"):
        connection = direct.take()
        assert type(connection).__name__.startswith("KernelTimed")  # blocking socket, SO_RCVTIMEO
        direct.give(connection)
    started = time.monotonic()
    with pytest.raises((redis.ConnectionError, redis.TimeoutError)):
        direct.call("BLPOP", f"{prefix}nothing", 2)  # tried twice (retry_attempts=1)
    assert 0.5 < time.monotonic() - started < 2.5
    assert direct.call("PING") in (b"PONG", True)  # on a fresh connection


def test_connections_are_reused_not_multiplied(direct: Direct) -> None:
    for _ in range(50):
        direct.call("PING")
    assert len(list(direct._created)) == 1


def test_a_forked_child_connects_anew(direct: Direct, redis_url: str, prefix: str) -> None:
    from celeriac_redis import RedisResultStore

    from .conftest import make_config as config

    store = RedisResultStore(redis_url, config(prefix))
    assert store.wait("x", frozenset({"SUCCESS"}), timeout=0.01) is None  # keeps a waiting connection
    direct.call("PING")
    parent = ({id(c) for c in direct._created}, [id(c) for c, _ in store._idle_waiters])
    pid = os.fork()
    if pid == 0:  # the child: exit code 0 when nothing of the parent's is reused
        ok = not direct._idle and not list(direct._created) and not store._idle_waiters
        ok = ok and direct.call("PING") in (b"PONG", True)
        ok = ok and store.wait("x", frozenset({"SUCCESS"}), timeout=0.01) is None
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert direct.call("PING") in (b"PONG", True)  # the parent's sockets still work
    assert store.wait("x", frozenset({"SUCCESS"}), timeout=0.01) is None
    assert ({id(c) for c in direct._created}, [id(c) for c, _ in store._idle_waiters]) == parent
    store.close()


def test_switch_announcements_of_other_masters_or_malformed_are_ignored() -> None:
    from types import SimpleNamespace

    from celeriac_redis._switches import SwitchWatcher

    heard: list[tuple[str, int]] = []
    pool = SimpleNamespace(service_name="mymaster", sentinel_manager=SimpleNamespace(sentinels=[]))
    watcher = SwitchWatcher(pool, heard.append)
    watcher.handle(b"other 10.0.0.1 6379 10.0.0.2 6380")
    watcher.handle(b"mymaster 10.0.0.1 6379")
    watcher.handle(b"mymaster 10.0.0.1 6379 10.0.0.2 port")
    watcher.handle("mymaster 10.0.0.1 6379 10.0.0.2 6380")
    assert heard == [("10.0.0.2", 6380)]
