"""Property-based round trips for celeriac-json over every type it carries (hypothesis).

The values are JSON's own (``None``, bools, integers of any size, floats including NaN and the
infinities, strings including lone surrogates, lists, tuples, dicts with string keys) and
kombu's tagged types (``datetime``, ``date``, ``time``, ``UUID``, ``Decimal``, ``bytes``),
nested. Values are compared by type and exact text form, so ``1`` never passes for ``1.0``
nor ``Decimal("1.0")`` for ``Decimal("1")``; tuples come back as lists, as in Celery.
"""

from __future__ import annotations

import importlib
import importlib.util
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
from celeriac_json import JsonSerializer

HAS_ORJSON = importlib.util.find_spec("orjson") is not None
HAS_KOMBU = importable("kombu")
BACKENDS = [
    "stdlib",
    pytest.param(
        "orjson", marks=pytest.mark.skipif(not HAS_ORJSON, reason="orjson is not installed (extra 'fast')")
    ),
]
# Modest counts: the whole file runs in a few seconds.
PROPERTY = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Fixed UTC offsets in whole minutes, as real zones have. (kombu's reader keeps only whole
# minutes of an offset, so a sub-minute one cannot round-trip through it; zones whose offset
# depends on ``fold`` are left out: an aware datetime in a repeated hour never compares equal
# across zones, whatever the serializer does.)
offsets = st.none() | st.integers(min_value=-1439, max_value=1439).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
tagged = st.one_of(
    st.datetimes(timezones=offsets),
    st.dates(),
    st.times(timezones=offsets),
    st.uuids(),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.binary(max_size=40),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),  # beyond 64 bits too: the orjson backend hands those to the json module
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.text(st.characters(exclude_categories=()), max_size=10),  # lone surrogates included
    tagged,
)


def _not_a_tag(value: dict[str, Any]) -> bool:
    # A dict whose keys are exactly "__type__" and "__value__" is read as a kombu tag, in kombu too.
    return set(value) != {"__type__", "__value__"}


values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.lists(children, max_size=5).map(tuple),
        st.dictionaries(st.text(max_size=12), children, max_size=5).filter(_not_a_tag),
    ),
    max_leaves=25,
)


def canon(value: Any) -> Any:
    """A hashable, type-exact form of a value, with tuples read as lists (JSON has no tuple)."""
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
        return (kind.__name__, value.isoformat())  # the offset, exactly, and microseconds
    return (kind.__name__, value)


@pytest.mark.parametrize("backend", BACKENDS)
@PROPERTY
@given(value=values)
def test_round_trip(backend: str, value: Any) -> None:
    serializer = JsonSerializer(backend=backend)  # type: ignore[arg-type]
    data = serializer.dumps(value)
    assert isinstance(data, bytes)
    assert canon(serializer.loads(data)) == canon(value)


@pytest.mark.skipif(not HAS_ORJSON, reason="orjson is not installed (extra 'fast')")
@PROPERTY
@given(value=values)
def test_each_backend_reads_the_others_output(value: Any) -> None:
    stdlib, fast = JsonSerializer(backend="stdlib"), JsonSerializer(backend="orjson")
    expected = canon(value)
    assert canon(stdlib.loads(fast.dumps(value))) == expected
    assert canon(fast.loads(stdlib.dumps(value))) == expected


@pytest.mark.parametrize("backend", BACKENDS)
@PROPERTY
@given(value=st.lists(tagged, max_size=4).map(tuple) | tagged)
def test_tagged_types_as_a_protocol2_body(backend: str, value: Any) -> None:
    """The types in the places a task message puts them: args, kwargs, and nested in both."""
    serializer = JsonSerializer(backend=backend)  # type: ignore[arg-type]
    body = [
        [value, {"nested": [value]}],
        {"when": value},
        {"callbacks": None, "errbacks": None, "chain": None, "chord": None},
    ]
    assert canon(serializer.loads(serializer.dumps(body))) == canon(body)


@pytest.mark.skipif(not HAS_KOMBU, reason="kombu is not installed")
@pytest.mark.parametrize("backend", BACKENDS)
@PROPERTY
@given(value=values)
def test_kombu_reads_ours_and_we_read_kombus(backend: str, value: Any) -> None:
    import kombu.utils.json

    kombu_json: Any = kombu.utils.json  # untyped

    serializer = JsonSerializer(backend=backend)  # type: ignore[arg-type]
    expected = canon(value)
    assert canon(kombu_json.loads(serializer.dumps(value))) == expected
    assert canon(serializer.loads(kombu_json.dumps(value).encode("utf-8"))) == expected
