"""Property-based round trips for celeriac-yaml over the safe types (hypothesis).

Safe YAML carries ``None``, bools, integers of any size, floats including NaN and the
infinities, ``str``, ``bytes`` (``!!binary``), ``datetime`` (naive, or with a whole-minute UTC
offset, which is what a YAML timestamp can hold), ``date``, lists, tuples (as lists), sets
(``!!set``) and dicts, nested. Values are compared by type and exact text form.
"""

from __future__ import annotations

from datetime import datetime
from datetime import timedelta
from datetime import timezone
from typing import Any

import pytest
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from celeriac.testing import importable
from celeriac_yaml import YamlSerializer

pytest.importorskip("yaml")

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# A YAML timestamp's offset is [+-]hh[:mm]: whole minutes only.
offsets = st.none() | st.builds(
    timezone,
    st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(lambda m: timedelta(minutes=m)),
)
text = st.text(max_size=30)  # no lone surrogates (the default): they have no UTF-8 form
hashable = st.one_of(st.none(), st.booleans(), st.integers(), text, st.dates())
scalars = st.one_of(
    hashable,
    st.floats(allow_nan=True, allow_infinity=True),
    st.binary(max_size=40),
    st.datetimes(timezones=offsets),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.lists(children, max_size=5).map(tuple),
        st.dictionaries(hashable, children, max_size=5),
        st.sets(hashable, max_size=5),
    ),
    max_leaves=25,
)


def canon(value: Any, *, ordered: bool = True) -> Any:
    """A hashable, type-exact form of a value, with tuples read as lists.

    ``ordered=False`` ignores the order of dict keys (kombu dumps them sorted).
    """
    kind = type(value)
    if kind is list or kind is tuple:
        return ("list", tuple(canon(item, ordered=ordered) for item in value))
    if kind is dict:
        items = ((canon(key), canon(item, ordered=ordered)) for key, item in value.items())
        return ("dict", tuple(items) if ordered else frozenset(items))
    if kind is set:
        return ("set", frozenset(canon(item) for item in value))
    if kind is float:
        return ("float", repr(value))
    if kind is datetime:
        return ("datetime", value.isoformat())
    return (kind.__name__, value)


@PROPERTY
@given(value=values)
def test_round_trip(value: Any) -> None:
    serializer = YamlSerializer()
    data = serializer.dumps(value)
    assert isinstance(data, bytes)
    assert canon(serializer.loads(data)) == canon(value)


@pytest.mark.skipif(not importable("kombu"), reason="kombu is not installed")
@PROPERTY
@given(value=values)
def test_kombu_reads_ours_and_we_read_kombus(value: Any) -> None:
    import kombu.serialization

    registry: Any = kombu.serialization.registry  # untyped

    ours = YamlSerializer()
    content_type, encoding, theirs = registry.dumps(value, serializer="yaml")
    assert content_type == ours.content_type
    expected = canon(value, ordered=False)
    from_ours = registry.loads(ours.dumps(value), content_type, encoding, accept=[content_type])
    assert canon(from_ours, ordered=False) == expected
    from_kombu = ours.loads(theirs.encode(encoding) if isinstance(theirs, str) else theirs)
    assert canon(from_kombu, ordered=False) == expected
