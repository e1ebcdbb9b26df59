"""Property-based round trips for celeriac-pickle over plain values (hypothesis).

Pickle keeps Python types as they are: tuples stay tuples, sets and frozensets stay sets,
integers of any size, floats including NaN, complex numbers, ``bytes`` and ``bytearray``,
dicts with any hashable keys, and the standard library's value types. Values are compared by
type and exact text form, at every protocol the serializer writes.
"""

from __future__ import annotations

import pickle
import uuid
from datetime import date
from datetime import datetime
from datetime import time
from datetime import timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from celeriac_pickle import DEFAULT_PROTOCOL
from celeriac_pickle import PickleSerializer

PROPERTY = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PROTOCOLS = sorted({2, DEFAULT_PROTOCOL, pickle.HIGHEST_PROTOCOL})

hashable = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False),
        st.complex_numbers(allow_nan=False),
        st.text(st.characters(exclude_categories=()), max_size=20),  # lone surrogates too
        st.binary(max_size=30),
        st.decimals(allow_nan=False),
        st.fractions(),
        st.datetimes(timezones=st.none() | st.timezones()),
        st.dates(),
        st.times(),
        st.timedeltas(),
        st.uuids(),
    ),
    lambda children: st.lists(children, max_size=4).map(tuple) | st.frozensets(children, max_size=4),
    max_leaves=10,
)
values = st.recursive(
    hashable | st.floats(allow_nan=True) | st.binary(max_size=30).map(bytearray),
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.lists(children, max_size=5).map(tuple),
        st.dictionaries(hashable, children, max_size=5),
        st.sets(hashable, max_size=5),
    ),
    max_leaves=25,
)


def canon(value: Any, *, fold: bool = True) -> Any:
    """A hashable, type-exact form of a value: tuples, sets and lists stay apart.

    ``fold=False`` ignores ``fold`` on datetimes and times: CPython pickles it only from
    protocol 4 on (``datetime._getstate``), so protocols 2 and 3 read it back as 0.
    """
    kind = type(value)
    if kind in (list, tuple):
        return (kind.__name__, tuple(canon(item, fold=fold) for item in value))
    if kind in (set, frozenset):
        return (kind.__name__, frozenset(canon(item, fold=fold) for item in value))
    if kind is dict:
        return ("dict", tuple((canon(key, fold=fold), canon(item, fold=fold)) for key, item in value.items()))
    if not fold and kind in (datetime, time):
        value = value.replace(fold=0)
    if kind in (float, complex, Decimal):
        return (kind.__name__, repr(value))
    if kind is bytearray:
        return ("bytearray", bytes(value))
    if kind is datetime:
        return ("datetime", value.isoformat(), value.fold, repr(value.tzinfo))
    if kind in (time, date, timedelta, Fraction, uuid.UUID):
        return (kind.__name__, repr(value))
    return (kind.__name__, value)


@pytest.mark.parametrize("protocol", PROTOCOLS)
@PROPERTY
@given(value=values)
def test_round_trip(protocol: int, value: Any) -> None:
    serializer = PickleSerializer(protocol=protocol)
    data = serializer.dumps(value)
    assert isinstance(data, bytes)
    keep_fold = protocol >= 4
    assert canon(serializer.loads(data), fold=keep_fold) == canon(value, fold=keep_fold)


@PROPERTY
@given(value=values)
def test_default_bytes_are_kombus(value: Any) -> None:
    """kombu pickles with protocol 4; so does the serializer by default, byte for byte."""
    assert PickleSerializer().dumps(value) == pickle.dumps(value, protocol=4)
