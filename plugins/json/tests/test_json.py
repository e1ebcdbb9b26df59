"""Tests for celeriac-json: kombu's wire format, both backends, errors and registration."""

from __future__ import annotations

import dataclasses
import enum
import importlib.util
import json
import math
import pickle
import random
import subprocess
import sys
import uuid
from collections import namedtuple
from collections.abc import Callable
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import time
from datetime import timedelta
from datetime import timezone
from decimal import Decimal
from functools import partial
from importlib.metadata import entry_points
from typing import Any

import pluggy
import pytest

import celeriac_json
from celeriac import Celeriac
from celeriac import MessageError
from celeriac import PluginError
from celeriac import SerializationError
from celeriac.plugin import Config
from celeriac.plugin import Serializer
from celeriac.plugin import hookspecs
from celeriac.testing import worker_thread
from celeriac_json import Backend
from celeriac_json import JsonSerializer

HAS_ORJSON = importlib.util.find_spec("orjson") is not None
BACKENDS = [
    "stdlib",
    pytest.param(
        "orjson", marks=pytest.mark.skipif(not HAS_ORJSON, reason="orjson is not installed (extra 'fast')")
    ),
]
needs_orjson = pytest.mark.skipif(not HAS_ORJSON, reason="orjson is not installed (extra 'fast')")

PROTOCOL2_BODY = [[2, 3], {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]


@pytest.fixture(params=BACKENDS)
def serializer(request: pytest.FixtureRequest) -> JsonSerializer:
    return JsonSerializer(backend=request.param)


@pytest.fixture
def serializers() -> tuple[JsonSerializer, JsonSerializer]:
    if not HAS_ORJSON:
        pytest.skip("orjson is not installed (extra 'fast')")
    return JsonSerializer(backend="stdlib"), JsonSerializer(backend="orjson")


def compact(text: str) -> bytes:
    """Our layout of a kombu document: same content and key order, no spaces, UTF-8."""
    return json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False).encode()


def same(a: Any, b: Any) -> bool:
    """Equality that also tells types apart (1 vs 1.0 vs True) and treats NaN as equal to NaN."""
    return repr(a) == repr(b)


# --- kombu's wire format -------------------------------------------------------------------------
#
# Each string is exactly what kombu.utils.json.dumps (kombu 5.3+; checked against 5.7.0) writes for
# the value. Celery reads our compact form of it, and we read its spaced and \u-escaped form.

KOMBU_WIRE: list[tuple[str, Any, str]] = [
    (
        "datetime",
        datetime(2024, 5, 17, 13, 45, 30, 123456),
        '{"__type__": "datetime", "__value__": "2024-05-17T13:45:30.123456"}',
    ),
    (
        "datetime-utc",
        datetime(2024, 5, 17, 13, 45, 30, tzinfo=UTC),
        '{"__type__": "datetime", "__value__": "2024-05-17T13:45:30+00:00"}',
    ),
    (
        "datetime-offset",
        datetime(2024, 5, 17, 13, 45, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        '{"__type__": "datetime", "__value__": "2024-05-17T13:45:30+05:30"}',
    ),
    ("date", date(2024, 5, 17), '{"__type__": "date", "__value__": "2024-05-17"}'),
    ("time", time(13, 45, 30, 500), '{"__type__": "time", "__value__": "13:45:30.000500"}'),
    ("time-utc", time(13, 45, tzinfo=UTC), '{"__type__": "time", "__value__": "13:45:00+00:00"}'),
    (
        "uuid",
        uuid.UUID("12345678-1234-5678-1234-567812345678"),
        '{"__type__": "uuid", "__value__": {"hex": "12345678123456781234567812345678"}}',
    ),
    ("decimal", Decimal("3.14159"), '{"__type__": "decimal", "__value__": "3.14159"}'),
    ("decimal-nan", Decimal("NaN"), '{"__type__": "decimal", "__value__": "NaN"}'),
    ("bytes-utf8", b"hello \xc3\xa9", '{"__type__": "bytes", "__value__": "hello \\u00e9"}'),
    ("bytes-binary", b"\xff\x00\xfe", '{"__type__": "base64", "__value__": "/wD+"}'),
    ("bytes-empty", b"", '{"__type__": "bytes", "__value__": ""}'),
    ("unicode", "é☃", '"\\u00e9\\u2603"'),
    ("nan", float("nan"), "NaN"),
    ("infinity", float("inf"), "Infinity"),
    ("minus-infinity", float("-inf"), "-Infinity"),
    (
        "protocol-2-body",
        PROTOCOL2_BODY,
        '[[2, 3], {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]',
    ),
]
WIRE_IDS = [case[0] for case in KOMBU_WIRE]


@pytest.mark.parametrize(("label", "value", "kombu"), KOMBU_WIRE, ids=WIRE_IDS)
def test_writes_kombus_format(serializer: JsonSerializer, label: str, value: Any, kombu: str) -> None:
    assert serializer.dumps(value) == compact(kombu)


@pytest.mark.parametrize(("label", "value", "kombu"), KOMBU_WIRE, ids=WIRE_IDS)
def test_reads_kombus_format(serializer: JsonSerializer, label: str, value: Any, kombu: str) -> None:
    assert same(serializer.loads(kombu.encode()), value)


@pytest.mark.parametrize(
    ("value", "kombu"),
    [
        ((1, "a", (2,)), '[1, "a", [2]]'),
        ({1: "a", 2.5: "b", None: "c"}, '{"1": "a", "2.5": "b", "null": "c"}'),
        ({True: "x", False: "y"}, '{"true": "x", "false": "y"}'),
        ({float("nan"): 1, float("-inf"): 2}, '{"NaN": 1, "-Infinity": 2}'),
        ([float("nan"), {"x": [float("inf")]}], '[NaN, {"x": [Infinity]}]'),
    ],
    ids=["tuples", "number-keys", "bool-keys", "non-finite-keys", "non-finite-nested"],
)
def test_python_shapes_json_lacks_are_written_like_kombu(
    serializer: JsonSerializer, value: Any, kombu: str
) -> None:
    assert serializer.dumps(value) == compact(kombu)


def test_tagged_values_nested_in_a_task_body(serializer: JsonSerializer) -> None:
    when = datetime(2024, 5, 17, 13, 45, 30, 123456, tzinfo=UTC)
    body = [(42, when), {"ids": [uuid.UUID(int=1)], "raw": b"\x00\x01"}, PROTOCOL2_BODY[2]]
    data = serializer.dumps(body)
    assert data == (
        b'[[42,{"__type__":"datetime","__value__":"2024-05-17T13:45:30.123456+00:00"}],'
        b'{"ids":[{"__type__":"uuid","__value__":{"hex":"00000000000000000000000000000001"}}],'
        b'"raw":{"__type__":"bytes","__value__":"\\u0000\\u0001"}},'
        b'{"callbacks":null,"errbacks":null,"chain":null,"chord":null}]'
    )
    assert serializer.loads(data) == [[42, when], body[1], body[2]]


def test_reads_the_uuid_form_of_kombu_5_3_0(serializer: JsonSerializer) -> None:
    value = uuid.UUID("0f1e2d3c-4b5a-4978-8796-a5b4c3d2e1f0")
    data = f'{{"__type__": "uuid", "__value__": {{"hex": "{value.hex}", "version": 4}}}}'
    assert serializer.loads(data.encode()) == value


def test_reads_tags_whose_key_is_escaped(serializer: JsonSerializer) -> None:
    data = b'{"\\u005f\\u005ftype__": "date", "__value__": "2024-05-17"}'
    assert serializer.loads(data) == date(2024, 5, 17)


def test_dict_with_tag_keys_and_more_is_left_alone(serializer: JsonSerializer) -> None:
    value = {"__type__": "date", "__value__": "2024-05-17", "extra": 1}
    assert serializer.loads(serializer.dumps(value)) == value


def test_datetime_subclass_is_written_with_the_base_isoformat(serializer: JsonSerializer) -> None:
    class Stamp(datetime):
        def isoformat(self, sep: str = "T", timespec: str = "auto") -> str:
            return "not used"

    data = serializer.dumps(Stamp(2024, 5, 17))
    assert data == b'{"__type__":"datetime","__value__":"2024-05-17T00:00:00"}'


def test_object_with_json_method_is_replaced_by_its_result(serializer: JsonSerializer) -> None:
    class Money:
        def __json__(self) -> Any:
            return {"amount": Decimal("9.99"), "currency": "EUR"}

    assert serializer.loads(serializer.dumps([Money()])) == [{"amount": Decimal("9.99"), "currency": "EUR"}]


# --- round trips ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        datetime(2024, 2, 29, 23, 59, 59, 999999),
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-3, minutes=-30))),
        date(1, 1, 1),
        time(0, 0),
        time(23, 59, 59, 1, tzinfo=UTC),
        uuid.UUID("c232ab00-9414-11ec-b3c8-9f6bdeced846"),  # version 1
        uuid.UUID("9b2c3f4e-1d5a-4c6b-8e7f-0a1b2c3d4e5f"),  # version 4
        uuid.UUID("0188bcbb-8475-7605-a094-fe41c58df798"),  # version 7
        Decimal("3314132.13363235235324234123213213214134"),
        Decimal("-0"),
        Decimal("1E+10"),
        Decimal("-Infinity"),
        bytes(range(256)),
        b"plain text",
        "\u2028 line separator and 😀",
        2**64 - 1,
        -(2**63),
        2**200,
        -(2**200),
        1234567890123456789,
        0.1,
        -0.0,
        5e-324,
        1e308,
        True,
        None,
        {"nested": [{"deep": [date(2024, 1, 1), b"x", Decimal(1)]}]},
    ],
    ids=repr,
)
def test_round_trip(serializer: JsonSerializer, value: Any) -> None:
    assert same(serializer.loads(serializer.dumps(value)), value)


def test_lone_surrogates_are_escaped_as_kombu_does(serializer: JsonSerializer) -> None:
    # kombu writes ["ok", "\u00e9", "\udc80"]; UTF-8 has no form for the surrogate.
    data = serializer.dumps(["ok", "é", "\udc80"])
    assert data == b'["ok","\\u00e9","\\udc80"]'
    assert serializer.loads(data) == ["ok", "é", "\udc80"]


def test_round_trip_non_finite_floats(serializer: JsonSerializer) -> None:
    result = serializer.loads(serializer.dumps([float("nan"), float("inf"), float("-inf")]))
    assert math.isnan(result[0])
    assert result[1:] == [math.inf, -math.inf]


def test_protocol_2_body_round_trip(serializer: JsonSerializer) -> None:
    data = serializer.dumps(PROTOCOL2_BODY)
    assert data == b'[[2,3],{},{"callbacks":null,"errbacks":null,"chain":null,"chord":null}]'
    assert serializer.loads(data) == PROTOCOL2_BODY


def test_protocol_2_body_with_tuples_comes_back_with_lists(serializer: JsonSerializer) -> None:
    body: tuple[Any, ...] = ((2, 3), {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None})
    assert serializer.loads(serializer.dumps(body)) == PROTOCOL2_BODY


def test_subclasses_of_json_types_go_out_as_their_values(serializer: JsonSerializer) -> None:
    class Color(enum.IntEnum):
        RED = 1

    class Mode(enum.StrEnum):
        FAST = "fast"

    class Ratio(float):
        pass

    class Bag(dict[str, Any]):
        pass

    point = namedtuple("point", "x y")
    value = [Color.RED, Mode.FAST, Ratio(0.5), Bag(a=1), point(1, 2), {Color.RED: 1}]
    assert serializer.dumps(value) == b'[1,"fast",0.5,{"a":1},[1,2],{"1":1}]'


def test_loads_accepts_bytearray_and_memoryview(serializer: JsonSerializer) -> None:
    assert serializer.loads(bytearray(b'{"a": [1]}')) == {"a": [1]}  # type: ignore[arg-type]
    assert serializer.loads(memoryview(b'{"a": [1]}')) == {"a": [1]}  # type: ignore[arg-type]


def test_integers_beyond_64_bits_are_read_exactly(serializer: JsonSerializer) -> None:
    # orjson would read these as floats; they must come back as the same ints.
    data = b"[18446744073709551616, -9223372036854775809, 123456789012345678901234567890]"
    assert serializer.loads(data) == [2**64, -(2**63) - 1, 123456789012345678901234567890]


def test_reads_what_only_the_json_module_accepts(serializer: JsonSerializer) -> None:
    result = serializer.loads(b'[1e400, "\\ud800", -Infinity]')
    assert result == [math.inf, "\ud800", -math.inf]


def test_deep_nesting_round_trips(serializer: JsonSerializer) -> None:
    value: Any = [date(2024, 1, 1)]
    for _ in range(300):  # deeper than orjson's encoder allows
        value = [value]
    assert serializer.loads(serializer.dumps(value)) == value


# --- errors --------------------------------------------------------------------------------------


class Opaque:
    pass


class Shade(enum.Enum):
    DARK = 1


@dataclasses.dataclass
class Point:
    x: int


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([1, {2, 3}], "cannot encode an object of type set as JSON at value[1]: JSON has no set type"),
        ({"a": frozenset()}, "type frozenset as JSON at value['a']: JSON has no set type"),
        ({"args": (1, Opaque())}, f"type {__name__}.Opaque as JSON at value['args'][1]: JSON can carry dict"),
        (Shade.DARK, f"type {__name__}.Shade as JSON at value: JSON can carry"),
        ([Point(1)], f"type {__name__}.Point as JSON at value[0]"),
        (bytearray(b"x"), "type bytearray as JSON at value"),
        (timedelta(1), "type datetime.timedelta as JSON at value"),
        ({"k": {(1, 2): "v"}}, "at value['k']: keys must be str, int, float, bool or None, not tuple"),
    ],
    ids=["set", "frozenset", "object", "enum", "dataclass", "bytearray", "timedelta", "key"],
)
def test_unserializable_values(serializer: JsonSerializer, value: Any, message: str) -> None:
    with pytest.raises(SerializationError) as excinfo:
        serializer.dumps(value)
    assert message in str(excinfo.value)


def test_circular_reference(serializer: JsonSerializer) -> None:
    value: list[Any] = []
    value.append(value)
    with pytest.raises(SerializationError, match="Circular reference detected"):
        serializer.dumps(value)


def test_error_from_a_json_method_propagates(serializer: JsonSerializer) -> None:
    class Broken:
        def __json__(self) -> Any:
            raise LookupError("no")

    with pytest.raises(LookupError, match="no"):
        serializer.dumps([Broken()])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{bad", "invalid JSON: Expecting property name enclosed in double quotes: line 1 column 2"),
        (b"", "invalid JSON: Expecting value: line 1 column 1 (char 0)"),
        (b"[1] [2]", "invalid JSON: Extra data: line 1 column 5"),
        (b'"\xff"', "invalid JSON: the body is not UTF-8"),
        (b'["a\x00"]', "invalid JSON: Invalid control character"),
        (b'{"__type__": "nope", "__value__": 1}', "unsupported JSON __type__ 'nope'"),
        (b'{"__type__": ["x"], "__value__": 1}', "unsupported JSON __type__ ['x']"),
        (b'{"__type__": "datetime", "__value__": "yesterday"}', "invalid JSON 'datetime' value 'yesterday'"),
        (b'{"__type__": "date", "__value__": 5}', "invalid JSON 'date' value 5"),
        (b'{"__type__": "decimal", "__value__": "1,5"}', "invalid JSON 'decimal' value '1,5'"),
        (b'{"__type__": "uuid", "__value__": "abc"}', "invalid JSON 'uuid' value 'abc'"),
        (b'{"__type__": "uuid", "__value__": {"hex": "12"}}', "invalid JSON 'uuid' value {'hex': '12'}"),
        (b'{"__type__": "bytes", "__value__": null}', "invalid JSON 'bytes' value None"),
        (b'{"__type__": "base64", "__value__": "abc"}', "invalid JSON 'base64' value 'abc'"),
        (b"[" * 100_000, "invalid JSON: the document is nested too deeply"),
    ],
    ids=[
        "syntax",
        "empty",
        "extra-data",
        "not-utf8",
        "control-char",
        "unknown-tag",
        "unhashable-tag",
        "bad-datetime",
        "bad-date",
        "bad-decimal",
        "bad-uuid",
        "short-uuid",
        "bad-bytes",
        "bad-base64",
        "too-deep",
    ],
)
def test_invalid_bytes(serializer: JsonSerializer, data: bytes, message: str) -> None:
    with pytest.raises(MessageError) as excinfo:
        serializer.loads(data)
    assert message in str(excinfo.value)


# --- both backends agree -------------------------------------------------------------------------


def _random_value(rnd: random.Random, depth: int = 0) -> Any:
    kind = rnd.randrange(7) if depth < 4 else 6
    if kind == 0:
        return [_random_value(rnd, depth + 1) for _ in range(rnd.randrange(4))]
    if kind == 1:
        return tuple(_random_value(rnd, depth + 1) for _ in range(rnd.randrange(4)))
    if kind == 2:
        keys = ["a", "__type__", "__value__", 1, -7, 2.5, True, None, float("nan")]
        return {rnd.choice(keys): _random_value(rnd, depth + 1) for _ in range(rnd.randrange(4))}
    scalars: list[Callable[[], Any]] = [
        lambda: rnd.randint(-(2**70), 2**70),
        lambda: rnd.randint(-(2**63), 2**64),
        lambda: rnd.choice([0.1, -0.0, 1e16, 1e-7, 5e-324, 1e308, math.nan, math.inf, -math.inf]),
        lambda: rnd.choice(["", "abc", "é☃😀", "\u2028", 'q"b\\c\n\t\x01', "__type__", "9" * 25]),
        lambda: rnd.choice([True, False, None]),
        lambda: datetime(2024, 5, 17, 13, rnd.randrange(60), tzinfo=rnd.choice([None, UTC])),
        lambda: date(rnd.randint(1, 9999), 1, 31),
        lambda: time(rnd.randrange(24), 5, 6, rnd.choice([0, 7])),
        lambda: Decimal(rnd.choice(["3.14", "-0", "NaN", "1E+10"])),
        lambda: uuid.UUID(int=rnd.getrandbits(128)),
        lambda: bytes(rnd.randrange(256) for _ in range(rnd.randrange(6))),
    ]
    return rnd.choice(scalars)()


def _outcome(call: Callable[[], Any]) -> str:
    try:
        return f"value {call()!r}"
    except MessageError as exc:  # a random dict may hold exactly "__type__" and "__value__"
        return f"error {exc}"


def test_backends_agree_on_random_values(serializers: tuple[JsonSerializer, JsonSerializer]) -> None:
    stdlib, fast = serializers
    rnd = random.Random(20240517)
    for _ in range(500):
        value = _random_value(rnd)
        ours, theirs = stdlib.dumps(value), fast.dumps(value)
        assert same(json.loads(ours), json.loads(theirs)), value
        decoded = _outcome(partial(stdlib.loads, ours))
        assert _outcome(partial(fast.loads, ours)) == decoded, value
        assert _outcome(partial(fast.loads, theirs)) == decoded, value
        assert _outcome(partial(stdlib.loads, theirs)) == decoded, value


@pytest.mark.parametrize(
    "value",
    [
        PROTOCOL2_BODY,
        [(1, 2), {"when": datetime(2024, 5, 17, tzinfo=UTC), "id": uuid.UUID(int=7)}, {}],
        {"text": "é☃😀", "n": 2**63, "f": 0.30000000000000004, "z": Decimal("0.1")},
    ],
)
def test_backends_write_the_same_bytes(
    serializers: tuple[JsonSerializer, JsonSerializer], value: Any
) -> None:
    stdlib, fast = serializers
    assert stdlib.dumps(value) == fast.dumps(value)


@pytest.mark.parametrize(
    "value",
    [[1, {2}], [Opaque()], {(1,): 2}, [2**64, {3}], Shade.DARK],
    ids=["set", "object", "key", "bigint-then-set", "enum"],
)
def test_backends_raise_the_same_encode_errors(
    serializers: tuple[JsonSerializer, JsonSerializer], value: Any
) -> None:
    messages = []
    for serializer in serializers:
        with pytest.raises(SerializationError) as excinfo:
            serializer.dumps(value)
        messages.append(str(excinfo.value))
    assert messages[0] == messages[1]


@pytest.mark.parametrize(
    "data",
    [
        b"{bad",
        b"NaN x",
        b"[1e400",
        b'{"__type__": "x", "__value__": 1}',
        b'[{"__type__": "date", "__value__": 1}]',
    ],
)
def test_backends_raise_the_same_decode_errors(
    serializers: tuple[JsonSerializer, JsonSerializer], data: bytes
) -> None:
    messages = []
    for serializer in serializers:
        with pytest.raises(MessageError) as excinfo:
            serializer.loads(data)
        messages.append(str(excinfo.value))
    assert messages[0] == messages[1]


# --- plugin surface ------------------------------------------------------------------------------


def test_is_a_serializer() -> None:
    serializer = JsonSerializer()
    assert isinstance(serializer, Serializer)
    assert (serializer.name, serializer.content_type, serializer.content_encoding) == (
        "json",
        "application/json",
        "utf-8",
    )


@needs_orjson
def test_auto_picks_orjson_when_installed() -> None:
    assert JsonSerializer().backend == "orjson"
    assert JsonSerializer(backend="stdlib").backend == "stdlib"


def test_without_orjson(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "orjson", None)  # makes "import orjson" fail
    monkeypatch.delitem(sys.modules, "celeriac_json._orjson", raising=False)
    assert JsonSerializer().backend == "stdlib"
    assert JsonSerializer().loads(JsonSerializer().dumps([b"x"])) == [b"x"]
    with pytest.raises(PluginError, match=r"pip install 'celeriac-json\[fast\]'"):
        JsonSerializer(backend="orjson").dumps(1)


@pytest.mark.parametrize("backend", ["auto", "stdlib"])
def test_pickles_after_use(backend: Backend) -> None:
    serializer = JsonSerializer(backend=backend)
    data = serializer.dumps([date(2024, 5, 17)])
    copy = pickle.loads(pickle.dumps(serializer))
    assert copy.loads(data) == [date(2024, 5, 17)]
    assert copy.backend == serializer.backend


def test_unknown_backend() -> None:
    with pytest.raises(ValueError, match="backend must be"):
        JsonSerializer(backend="ujson")  # type: ignore[arg-type]


def test_importing_the_plugin_does_not_import_orjson() -> None:
    code = "import sys, celeriac_json; print('orjson' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_entry_point_is_registered() -> None:
    (point,) = [ep for ep in entry_points(group="celeriac.plugins") if ep.name == "json"]
    assert point.value == "celeriac_json"
    assert point.load() is celeriac_json


def test_hook_offers_the_serializer() -> None:
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    manager.register(celeriac_json, name="json")
    manager.check_pending()
    (offered,) = manager.hook.celeriac_add_serializers(config=Config())
    assert [type(s) for s in offered] == [JsonSerializer]
    assert offered[0].loads(offered[0].dumps(PROTOCOL2_BODY)) == PROTOCOL2_BODY


@pytest.mark.skipif(
    not any(ep.name == "threads" for ep in entry_points(group="celeriac.plugins")),
    reason="the worker's default pool comes from celeriac-threads, which is not installed",
)
def test_task_arguments_and_result_cross_a_worker(celeriac_app: Celeriac) -> None:
    @celeriac_app.task
    def echo(when: datetime, ident: uuid.UUID, raw: bytes, amount: Decimal) -> list[Any]:
        return [when, ident, raw, amount, type(when).__name__]

    args = (datetime(2024, 5, 17, 13, 45, tzinfo=UTC), uuid.UUID(int=9), b"\xff\x00", Decimal("9.99"))
    with worker_thread(celeriac_app):
        assert echo.delay(*args).get(timeout=10) == [*args, "datetime"]
