"""Tests for celeriac-msgpack: kombu's wire format, the extension types, errors, a worker round trip."""

from __future__ import annotations

import datetime as dt
import math
import pickle
import random
import subprocess
import sys
import uuid
from collections.abc import Iterator
from decimal import Decimal
from importlib.metadata import entry_points
from typing import Any

import msgpack
import pluggy
import pytest

import celeriac_msgpack
from celeriac import Celeriac
from celeriac import MessageError
from celeriac import SerializationError
from celeriac import testing
from celeriac.plugin import Config
from celeriac.plugin import Serializer
from celeriac.plugin import hookspecs
from celeriac.testing import worker_thread
from celeriac_msgpack import MsgpackSerializer

needs_pool = pytest.mark.skipif(
    not any(ep.name == "threads" for ep in entry_points(group="celeriac.plugins")),
    reason="the worker's default pool comes from celeriac-threads, which is not installed",
)

PROTOCOL2_BODY = [[2, 3], {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]


@pytest.fixture
def serializer() -> MsgpackSerializer:
    return MsgpackSerializer()


@pytest.fixture
def app() -> Iterator[Celeriac]:
    instance = Celeriac(
        "tests",
        broker="memory://",
        plugins=[testing],
        env={},
        config=False,
        serializer="msgpack",
        result_serializer="msgpack",
        accept=["msgpack"],
    )
    yield instance
    instance.close()


def same(a: Any, b: Any) -> bool:
    """Equality that also tells types apart (1 vs 1.0 vs True)."""
    return repr(a) == repr(b)


# --- kombu's wire format for plain values ------------------------------------------------------

PLAIN: list[Any] = [
    None,
    True,
    0,
    -1,
    2**64 - 1,
    -(2**63),
    1.5,
    float("inf"),
    "é☃",
    "",
    b"\xff\x00",
    b"",
    [],
    {},
    PROTOCOL2_BODY,
    {"nested": {"list": [1, [2, {"x": b"y"}]]}, "unicode": "\U0001f600"},
]


@pytest.mark.parametrize("value", PLAIN, ids=[f"{i}-{type(v).__name__}" for i, v in enumerate(PLAIN)])
def test_plain_values_are_packed_exactly_as_kombu_packs_them(
    serializer: MsgpackSerializer, value: Any
) -> None:
    serialization = pytest.importorskip("kombu.serialization")
    content_type, encoding, data = serialization.dumps(value, serializer="msgpack")
    assert (content_type, encoding) == (serializer.content_type, serializer.content_encoding)
    assert serializer.dumps(value) == data
    assert same(serializer.loads(data), value)
    assert same(
        serialization.loads(serializer.dumps(value), content_type, encoding, accept=[content_type]), value
    )


def test_str_and_bytes_stay_apart(serializer: MsgpackSerializer) -> None:
    data = serializer.dumps(["a", b"a"])
    assert data == b"\x92\xa1a\xc4\x01a"  # fixstr, then bin 8: use_bin_type=True
    assert serializer.loads(data) == ["a", b"a"]


def test_tuples_become_lists(serializer: MsgpackSerializer) -> None:
    assert serializer.loads(serializer.dumps(((1, 2), {"a": (3,)}))) == [[1, 2], {"a": [3]}]


def test_nan(serializer: MsgpackSerializer) -> None:
    [nan] = serializer.loads(serializer.dumps([float("nan")]))
    assert math.isnan(nan)


def test_integer_keys_round_trip(serializer: MsgpackSerializer) -> None:
    assert serializer.loads(serializer.dumps({1: "a", -2: "b", "c": 3})) == {1: "a", -2: "b", "c": 3}


# --- extension types ---------------------------------------------------------------------------

EXT: list[tuple[Any, bytes]] = [
    (dt.datetime(2024, 5, 17, 13, 45, 30, 123456), b"\xc7\x1a\x012024-05-17T13:45:30.123456"),
    (dt.datetime(2024, 5, 17, 13, 45, tzinfo=dt.UTC), b"\xc7\x19\x012024-05-17T13:45:00+00:00"),
    (dt.date(2024, 5, 17), b"\xc7\x0a\x022024-05-17"),
    (dt.time(13, 45, 30, 500), b"\xc7\x0f\x0313:45:30.000500"),
    (
        uuid.UUID("12345678-1234-5678-1234-567812345678"),
        b"\xd8\x04" + bytes.fromhex("12345678123456781234567812345678"),
    ),
    (Decimal("3.14159"), b"\xc7\x07\x053.14159"),
]


@pytest.mark.parametrize(("value", "wire"), EXT, ids=[type(v).__name__ for v, _ in EXT])
def test_extension_types_wire_format(serializer: MsgpackSerializer, value: Any, wire: bytes) -> None:
    assert serializer.dumps(value) == wire
    assert same(serializer.loads(wire), value)


def test_extension_values_keep_their_details(serializer: MsgpackSerializer) -> None:
    offset = dt.timezone(dt.timedelta(hours=5, minutes=30))
    values = [
        dt.datetime(2024, 5, 17, 13, 45, tzinfo=offset),
        dt.time(1, 2, tzinfo=dt.UTC),
        Decimal("NaN"),
        Decimal("-0.000"),
        Decimal("1E+3"),
    ]
    loaded = serializer.loads(serializer.dumps(values))
    assert repr(loaded) == repr(values)


def test_datetime_subclass_is_written_as_a_datetime(serializer: MsgpackSerializer) -> None:
    class Stamp(dt.datetime):
        def isoformat(self, sep: str = "T", timespec: str = "auto") -> str:
            return "not this"

    loaded = serializer.loads(serializer.dumps(Stamp(2024, 5, 17)))
    assert same(loaded, dt.datetime(2024, 5, 17))


def test_reads_msgpack_standard_timestamps(serializer: MsgpackSerializer) -> None:
    data = msgpack.packb(msgpack.Timestamp(1715953530, 123456000))
    assert serializer.loads(data) == dt.datetime(2024, 5, 17, 13, 45, 30, 123456, tzinfo=dt.UTC)


def test_kombu_reads_extension_types_as_ext_objects(serializer: MsgpackSerializer) -> None:
    serialization = pytest.importorskip("kombu.serialization")
    [ext] = serialization.loads(
        serializer.dumps([Decimal("1.5")]),
        "application/x-msgpack",
        "binary",
        accept=["application/x-msgpack"],
    )
    assert ext == msgpack.ExtType(5, b"1.5")


def _random_value(rnd: random.Random, depth: int = 0) -> Any:
    kind = rnd.randrange(14 if depth < 4 else 11)
    scalars: list[Any] = [
        None,
        rnd.choice([True, False]),
        rnd.randint(-(2**63), 2**64 - 1),
        rnd.random() * 10 ** rnd.randint(-300, 300),
        "".join(rnd.choice("ab\x00é☃\U0001f600") for _ in range(rnd.randrange(6))),
        rnd.randbytes(rnd.randrange(6)),
        dt.datetime(2000, 1, 1)
        + dt.timedelta(seconds=rnd.randrange(10**9), microseconds=rnd.randrange(10**6)),
        dt.datetime.fromtimestamp(
            rnd.randrange(10**9), dt.timezone(dt.timedelta(minutes=rnd.randrange(-720, 720)))
        ),
        dt.date.fromordinal(rnd.randrange(1, 800000)),
        dt.time(rnd.randrange(24), rnd.randrange(60), rnd.randrange(60), rnd.randrange(10**6)),
        uuid.UUID(int=rnd.getrandbits(128)),
    ]
    if kind < len(scalars):
        return scalars[kind]
    if kind == 11:
        return Decimal(rnd.randint(-(10**30), 10**30)).scaleb(rnd.randint(-20, 5))
    if kind == 12:
        return [_random_value(rnd, depth + 1) for _ in range(rnd.randrange(4))]
    return {
        rnd.choice(["a", "b", 1, -2, b"k"]): _random_value(rnd, depth + 1) for _ in range(rnd.randrange(4))
    }


def test_random_values_round_trip(serializer: MsgpackSerializer) -> None:
    rnd = random.Random(20240517)
    for _ in range(3000):
        value = _random_value(rnd)
        assert same(serializer.loads(serializer.dumps(value)), value), value


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({1, 2}, "cannot encode an object of type set as msgpack: msgpack carries dict, list"),
        ([object()], "cannot encode an object of type object as msgpack"),
        (dt.timedelta(1), "cannot encode an object of type timedelta as msgpack"),
        ([2**64], "cannot encode value as msgpack: integer 18446744073709551616 does not fit in 64 bits"),
        (-(2**63) - 1, "does not fit in 64 bits"),
        ("\udc80", "cannot encode value as msgpack: 'utf-8' codec can't encode"),
    ],
    ids=["set", "object", "timedelta", "big-int", "small-int", "surrogate"],
)
def test_unserializable_values(serializer: MsgpackSerializer, value: Any, message: str) -> None:
    with pytest.raises(SerializationError, match=message):
        serializer.dumps(value)


def test_too_deep_nesting_is_refused(serializer: MsgpackSerializer) -> None:
    deep: list[Any] = []
    for _ in range(2000):
        deep = [deep]
    with pytest.raises(SerializationError, match="recursion limit exceeded"):
        serializer.dumps(deep)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xc1", "invalid msgpack: FormatError"),
        (b"\x91", "invalid msgpack: Unpack failed: incomplete input"),
        (b"\x01\x02", "invalid msgpack: unpack\\(b\\) received extra data"),
        (b"\xa2\xff\xfe", "invalid msgpack: 'utf-8' codec can't decode byte 0xff"),
        (b"", "invalid msgpack"),
        (
            msgpack.packb(msgpack.ExtType(42, b"")),
            r"unknown msgpack extension type 42 \(celeriac-msgpack reads 1 \(datetime\), 2 \(date\)",
        ),
        (msgpack.packb(msgpack.ExtType(4, b"ab")), "invalid msgpack UUID extension b'ab'"),
        (msgpack.packb(msgpack.ExtType(1, b"yesterday")), "invalid msgpack datetime extension b'yesterday'"),
        (msgpack.packb(msgpack.ExtType(5, b"1,5")), "invalid msgpack Decimal extension b'1,5'"),
        (msgpack.packb(msgpack.ExtType(2, b"\xff")), "invalid msgpack date extension"),
    ],
    ids=[
        "format",
        "truncated",
        "extra",
        "utf8",
        "empty",
        "unknown-ext",
        "uuid",
        "datetime",
        "decimal",
        "date",
    ],
)
def test_invalid_bytes(serializer: MsgpackSerializer, data: bytes, message: str) -> None:
    with pytest.raises(MessageError, match=message):
        serializer.loads(data)


# --- plugin surface ------------------------------------------------------------------------------


def test_is_a_serializer_with_kombus_names() -> None:
    serializer = MsgpackSerializer()
    assert isinstance(serializer, Serializer)
    assert (serializer.name, serializer.content_type, serializer.content_encoding) == (
        "msgpack",
        "application/x-msgpack",
        "binary",
    )


def test_importing_the_plugin_does_not_import_msgpack() -> None:
    code = "import sys, celeriac_msgpack; print('msgpack' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_pickles_after_use(serializer: MsgpackSerializer) -> None:
    data = serializer.dumps([dt.date(2024, 5, 17)])
    assert pickle.loads(pickle.dumps(serializer)).loads(data) == [dt.date(2024, 5, 17)]


def test_entry_point_is_registered() -> None:
    (point,) = [ep for ep in entry_points(group="celeriac.plugins") if ep.name == "msgpack"]
    assert point.value == "celeriac_msgpack"
    assert point.load() is celeriac_msgpack


def test_hook_offers_the_serializer() -> None:
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    manager.register(celeriac_msgpack, name="msgpack")
    manager.check_pending()
    (offered,) = manager.hook.celeriac_add_serializers(config=Config())
    assert [type(s) for s in offered] == [MsgpackSerializer]


# --- through a worker ----------------------------------------------------------------------------


@needs_pool
def test_task_arguments_and_result_cross_a_worker(app: Celeriac) -> None:
    @app.task
    def echo(when: dt.datetime, ident: uuid.UUID, raw: bytes, amount: Decimal, at: dt.time) -> list[Any]:
        return [when, ident, raw, amount, at, type(when).__name__]

    args = (
        dt.datetime(2024, 5, 17, 13, 45, tzinfo=dt.UTC),
        uuid.UUID(int=9),
        b"\xff\x00",
        Decimal("9.99"),
        dt.time(8, 30),
    )
    with worker_thread(app):
        result = echo.delay(*args)
        assert result.get(timeout=5) == [*args, "datetime"]
    record = app.result_store.get(result.id)
    assert record is not None
    assert record.content_type == "application/x-msgpack"
