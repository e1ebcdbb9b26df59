"""The header-table codec against py-amqp's (Celery's) encoding, both ways, and pika's framing."""

from __future__ import annotations

import datetime as dt
import decimal
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from celeriac_amqp import _table
from celeriac_amqp._properties import AmqpProperties

serialization = pytest.importorskip("amqp.serialization", reason="py-amqp (Celery's client) is the reference")

keys = st.text(min_size=1, max_size=20).filter(lambda k: len(k.encode("utf-8", "surrogateescape")) <= 255)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63) + 1, max_value=2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=50)
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(keys, inner, max_size=5),
    max_leaves=20,
)
tables = st.dictionaries(keys, values, max_size=8)


def _ours(table: dict[str, Any]) -> dict[str, Any]:
    decoded, _ = _table.decode_table(_table.encode_table(table))
    return decoded


@given(tables)
def test_py_amqp_reads_what_we_write(table: dict[str, Any]) -> None:
    encoded = _table.encode_table(table)
    [decoded], end = serialization.loads("F", encoded, 0)
    assert decoded == table and end == len(encoded)


@given(tables)
def test_we_read_what_py_amqp_writes(table: dict[str, Any]) -> None:
    encoded = serialization.dumps("F", [table])
    decoded, end = _table.decode_table(encoded)
    assert decoded == table and end == len(encoded)


def test_celery_headers_round_trip() -> None:
    headers = {
        "timelimit": (1.5, None),
        "eta": "2026-11-21T04:36:02.656330+00:00",
        "retries": 0,
        "ignore_result": False,
        "stamps": {},
        "at": 1763699762.25,
        "big": 2**40,
        "blob": b"\x00\xff",
        "price": decimal.Decimal("12.50"),
        "when": dt.datetime(2026, 11, 21, 4, 36, 2, tzinfo=dt.UTC),
    }
    assert _ours(headers) == {**headers, "timelimit": [1.5, None]}


def test_values_equal_across_types_keep_their_own_types() -> None:
    # True == 1 == 1.0 and (0,) == (False,) as dict keys: the pair cache must keep them apart.
    for value in (1, True, 1.0, [1], [True], [1.0], (0,), (False,), [0.0], [None, 1], [None, True]):
        for _ in range(2):  # the second time from the cache
            decoded = _ours({"k": value})["k"]
            assert decoded == (list(value) if isinstance(value, tuple) else value)
            if isinstance(value, list | tuple):
                assert [type(x) for x in decoded] == [type(x) for x in value]
            else:
                assert type(decoded) is type(value)


def test_a_negative_zero_in_a_kept_list_keeps_its_sign() -> None:
    # 0.0 == -0.0 (and they hash alike): a pair kept for [0.0] must not be sent for [-0.0].
    key = "signed-zero-list"
    assert math.copysign(1.0, _ours({key: [0.0]})[key][0]) == 1.0
    assert math.copysign(1.0, _ours({key: [-0.0]})[key][0]) == -1.0


def test_a_header_whose_strings_never_repeat_is_not_kept() -> None:
    kept = len(_table._PAIRS)
    for number in range(1000):
        encoded = _table.encode_table({"task-id-like": f"{number:036d}", "lang": "py"})
        assert _table.decode_table(encoded)[0] == {"task-id-like": f"{number:036d}", "lang": "py"}
    assert len(_table._PAIRS) - kept <= _table.PER_KEY + 1


def test_rabbitmq_types_are_read() -> None:
    body = b"".join(
        [
            b"\x01b" + b"b\xff",
            b"\x01B" + b"B\xff",
            b"\x01s" + b"s\xff\xfe",
            b"\x01u" + b"u\xff\xfe",
            b"\x01i" + b"i\xff\xff\xff\xff",
            b"\x01f" + b"f\x3f\xc0\x00\x00",
            b"\x01L" + b"L\xff\xff\xff\xff\xff\xff\xff\xfe",
        ]
    )
    table, _ = _table.decode_table(len(body).to_bytes(4, "big") + body)
    assert table == {"b": -1, "B": 255, "s": -2, "u": 65534, "i": 2**32 - 1, "f": 1.5, "L": -2}


def test_unencodable_values_name_the_header() -> None:
    with pytest.raises(_table.FieldTableError, match=r"header stamps\.x is a set"):
        _table.encode_table({"stamps": {"x": {1}}})
    with pytest.raises(_table.FieldTableError, match="does not fit in 64 bits"):
        _table.encode_table({"n": 2**70})
    with pytest.raises(_table.FieldTableError, match="at most 255"):
        _table.encode_table({"k" * 256: 1})


def test_garbage_is_an_error_not_a_crash() -> None:
    with pytest.raises(_table.FieldTableError, match="unknown AMQP field type"):
        _table.decode_table(b"\x00\x00\x00\x03\x01k?")
    with pytest.raises(_table.FieldTableError, match="truncated"):
        _table.decode_table(b"\x00\x00\x00\x09\x01kI\x00")


@given(tables.filter(bool), st.data())
def test_a_table_cut_short_anywhere_is_an_error_not_a_crash(
    table: dict[str, Any], data: st.DataObject
) -> None:
    """Every cut of a table's bytes (its keys known to the decoder from a whole read first,
    which the decoder keeps) is refused as a field-table error, never read as another table."""
    encoded = _table.encode_table(table)
    assert _table.decode_table(encoded)[0] == _table.decode_table(encoded)[0]
    cut = data.draw(st.integers(min_value=0, max_value=len(encoded) - 1))
    with pytest.raises(_table.FieldTableError):
        _table.decode_table(encoded[:cut])


def test_tables_nested_four_hundred_deep_are_read() -> None:
    """Nested tables cost the decoder two stack frames a level, as they always did."""
    table = b""
    for _ in range(400):
        table = len(table).to_bytes(4, "big") + table
        table = b"\x01kF" + table
    decoded, _ = _table.decode_table(len(table).to_bytes(4, "big") + table)
    depth = 0
    while decoded:
        decoded, depth = decoded["k"], depth + 1
    assert depth == 400


def test_properties_round_trip_through_our_encoder_and_decoder() -> None:
    props = AmqpProperties(
        content_type="application/json",
        content_encoding="utf-8",
        headers={"timelimit": [1.5, None], "at": math.pi},
        delivery_mode=2,
        priority=5,
        correlation_id="c",
        reply_to="r",
        message_id="m",
        timestamp=7,
        app_id="a",
    )
    again = AmqpProperties().decode(b"".join(props.encode()))
    assert vars(again) == vars(props)


@given(tables)
def test_properties_decode_what_py_amqp_frames(table: dict[str, Any]) -> None:
    from amqp.basic_message import Message

    message = Message(b"", content_type="application/json", application_headers=table, priority=3)
    encoded = message._serialize_properties()
    decoded = AmqpProperties().decode(encoded)
    assert decoded.headers == table and decoded.priority == 3 and decoded.content_type == "application/json"
