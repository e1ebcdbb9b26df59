"""Property-based round trips for celeriac-msgpack over every type it carries (hypothesis).

msgpack's own types (``None``, bools, 64-bit integers, floats including NaN and the
infinities, ``str``, ``bytes``, lists, tuples, maps with string, bytes or integer keys) and the
extension types 1-5 (``datetime``, ``date``, ``time``, ``UUID``, ``Decimal``), nested. Values
are compared by type and exact text form; tuples come back as lists, as in kombu.
"""

from __future__ import annotations

import uuid
from datetime import date
from datetime import datetime
from datetime import time
from datetime import timedelta
from datetime import timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from celeriac.testing import importable
from celeriac_msgpack import MsgpackSerializer
from celeriac_msgpack import _ext

pytest.importorskip("msgpack")

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

offsets = st.none() | st.builds(
    timezone,
    st.timedeltas(min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59)),
)
extension_values = st.one_of(
    st.datetimes(timezones=offsets),
    st.dates(),
    st.times(timezones=offsets),
    st.uuids(),
    st.decimals(allow_nan=True, allow_infinity=True),
)
plain = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.binary(max_size=40),
)
keys = st.one_of(
    st.text(max_size=12), st.binary(max_size=8), st.integers(min_value=-(2**63), max_value=2**64 - 1)
)


def containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=5),
        st.lists(children, max_size=5).map(tuple),
        st.dictionaries(keys, children, max_size=5),
    )


values = st.recursive(plain | extension_values, containers, max_leaves=25)
plain_values = st.recursive(plain, containers, max_leaves=25)


def canon(value: Any) -> Any:
    """A hashable, type-exact form of a value, with tuples read as lists (msgpack has arrays)."""
    kind = type(value)
    if kind is list or kind is tuple:
        return ("list", tuple(canon(item) for item in value))
    if kind is dict:
        return ("dict", tuple((canon(key), canon(item)) for key, item in value.items()))
    if kind is float:
        return ("float", repr(value))
    if kind is Decimal:
        return ("Decimal", str(value))
    if kind is datetime or kind is time:
        return (kind.__name__, value.isoformat())
    return (kind.__name__, value)


@PROPERTY
@given(value=values)
def test_round_trip(value: Any) -> None:
    serializer = MsgpackSerializer()
    data = serializer.dumps(value)
    assert isinstance(data, bytes)
    assert canon(serializer.loads(data)) == canon(value)


@PROPERTY
@given(value=extension_values)
def test_each_extension_type_has_its_code(value: Any) -> None:
    import msgpack

    code = {
        datetime: _ext.DATETIME,
        date: _ext.DATE,
        time: _ext.TIME,
        uuid.UUID: _ext.UUID,
        Decimal: _ext.DECIMAL,
    }
    packed = msgpack.unpackb(MsgpackSerializer().dumps(value), raw=False)
    assert isinstance(packed, msgpack.ExtType)
    assert packed.code == code[type(value)]


@pytest.mark.skipif(not importable("kombu"), reason="kombu is not installed")
@PROPERTY
@given(value=plain_values)
def test_plain_values_are_packed_as_kombu_packs_them(value: Any) -> None:
    """Without extension types the bytes are kombu's, and each side reads the other's."""
    import kombu.serialization

    registry: Any = kombu.serialization.registry  # untyped

    ours = MsgpackSerializer()
    _, _, theirs = registry.dumps(value, serializer="msgpack")
    assert ours.dumps(value) == theirs
    assert canon(ours.loads(theirs)) == canon(value)
