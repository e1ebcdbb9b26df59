"""Tests for celeriac-yaml: kombu's format, safe loading only, errors, a worker round trip."""

from __future__ import annotations

import datetime as dt
import math
import random
import subprocess
import sys
import uuid
from collections.abc import Iterator
from decimal import Decimal
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import attrs
import pluggy
import pytest

import celeriac_yaml
from celeriac import Celeriac
from celeriac import MessageError
from celeriac import SerializationError
from celeriac import states
from celeriac import testing
from celeriac.plugin import Config
from celeriac.plugin import DeadLetter
from celeriac.plugin import Serializer
from celeriac.plugin import TaskMessage
from celeriac.plugin import hookspecs
from celeriac.testing import wait_for
from celeriac.testing import worker_thread
from celeriac_yaml import YamlSerializer

needs_pool = pytest.mark.skipif(
    not any(ep.name == "threads" for ep in entry_points(group="celeriac.plugins")),
    reason="the worker's default pool comes from celeriac-threads, which is not installed",
)

PROTOCOL2_BODY = [[2, 3], {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]


@pytest.fixture
def serializer() -> YamlSerializer:
    return YamlSerializer()


@pytest.fixture
def app() -> Iterator[Celeriac]:
    instance = Celeriac(
        "tests",
        broker="memory://",
        plugins=[testing],
        env={},
        config=False,
        serializer="yaml",
        result_serializer="yaml",
        accept=["yaml"],
    )
    yield instance
    instance.close()


def wait_for_dead_letter(app: Celeriac, timeout: float = 5.0) -> DeadLetter:
    [letter] = wait_for(app.transport.dead_letters, timeout, "a dead-lettered message")
    return letter


# --- round trips ---------------------------------------------------------------------------------

VALUES: list[Any] = [
    None,
    True,
    -(2**80),
    0.1,
    1e17,
    -0.0,
    float("inf"),
    "é☃ \x00\t\x85",
    "",
    b"\xff\x00",
    b"",
    {3, "a"},
    dt.datetime(2024, 5, 17, 13, 45, 30, 123456),
    dt.datetime(2024, 5, 17, 13, 45, 30, tzinfo=dt.UTC),
    dt.datetime(2024, 5, 17, 13, 45, tzinfo=dt.timezone(dt.timedelta(hours=-5, minutes=-30))),
    dt.date(2024, 5, 17),
    {1: "int key", "nested": {"list": [1, [2, {}]]}, None: "null key", 2.5: "float key"},
    PROTOCOL2_BODY,
]
# Strings YAML would otherwise read as something else must come back as strings.
LOOKALIKES = ["yes", "No", "on", "null", "~", "1e3", "0x1F", "012", "2024-05-17", ".inf", "- a", "a: b", "#x"]


@pytest.mark.parametrize("value", VALUES, ids=[f"{i}-{type(v).__name__}" for i, v in enumerate(VALUES)])
def test_round_trip(serializer: YamlSerializer, value: Any) -> None:
    loaded = serializer.loads(serializer.dumps(value))
    assert repr(loaded) == repr(value) or loaded == value
    assert type(loaded) is type(value)


def test_strings_that_look_like_other_types_stay_strings(serializer: YamlSerializer) -> None:
    assert serializer.loads(serializer.dumps(LOOKALIKES)) == LOOKALIKES


def test_tuples_become_lists(serializer: YamlSerializer) -> None:
    assert serializer.loads(serializer.dumps(((1, 2), {"a": (3,)}))) == [[1, 2], {"a": [3]}]


def test_nan(serializer: YamlSerializer) -> None:
    [nan] = serializer.loads(serializer.dumps([float("nan")]))
    assert math.isnan(nan)


def test_aware_datetimes_keep_their_offset(serializer: YamlSerializer) -> None:
    offset = dt.timezone(dt.timedelta(hours=5, minutes=30))
    loaded = serializer.loads(serializer.dumps(dt.datetime(2024, 5, 17, 13, 45, tzinfo=offset)))
    assert loaded.utcoffset() == dt.timedelta(hours=5, minutes=30)


def test_shared_objects_stay_shared(serializer: YamlSerializer) -> None:
    shared = [1]
    first, second = serializer.loads(serializer.dumps([shared, shared]))
    assert first == second == [1]


def test_output_is_utf8_and_keeps_key_order(serializer: YamlSerializer) -> None:
    assert serializer.dumps({"z": "é", "a": 1}) == "z: é\na: 1\n".encode()


def _random_value(rnd: random.Random, depth: int = 0) -> Any:
    kind = rnd.randrange(12 if depth < 4 else 8)
    if kind == 0:
        return rnd.choice([None, True, False])
    if kind == 1:
        return rnd.randint(-(2**70), 2**70)
    if kind == 2:
        return rnd.choice([rnd.random() * 10 ** rnd.randint(-20, 20), -rnd.random(), 0.0, float("inf")])
    if kind == 3:
        alphabet = "ab :-#&*!%@`'\"\\\n\t\x00\x07é☃\U0001f600\u2028\ufeff0123yesno~.e"
        return "".join(rnd.choice(alphabet) for _ in range(rnd.randrange(8)))
    if kind == 4:
        return rnd.choice(LOOKALIKES)
    if kind == 5:
        return rnd.randbytes(rnd.randrange(6))
    if kind == 6:
        offset = dt.timedelta(seconds=rnd.randrange(10**9), microseconds=rnd.randrange(10**6))
        return dt.datetime(2000, 1, 1) + offset
    if kind == 7:
        return dt.date(1970, 1, 1) + dt.timedelta(days=rnd.randrange(40000))
    if kind == 8:
        return [_random_value(rnd, depth + 1) for _ in range(rnd.randrange(4))]
    if kind == 9:
        keys = [rnd.choice(["k", "yes", "1", "", "a b"]) + str(i) for i in range(3)]
        return {key: _random_value(rnd, depth + 1) for key in keys}
    if kind == 10:
        return {rnd.randint(-5, 5): _random_value(rnd, depth + 1) for _ in range(rnd.randrange(3))}
    return {rnd.randint(0, 9) for _ in range(rnd.randrange(4))}


def test_random_values_round_trip(serializer: YamlSerializer) -> None:
    rnd = random.Random(20240517)
    for _ in range(1500):
        value = _random_value(rnd)
        assert serializer.loads(serializer.dumps(value)) == value, value


# --- kombu's wire format -------------------------------------------------------------------------

KOMBU_VALUES: list[Any] = [
    PROTOCOL2_BODY,
    {"when": dt.datetime(2024, 5, 17, 13, 45, 30, tzinfo=dt.UTC), "day": dt.date(2024, 5, 17)},
    ["é☃", b"\xff\x00", {1, 2}, 2**70, None, True],
]


@pytest.mark.parametrize("value", KOMBU_VALUES, ids=["body", "dates", "mixed"])
def test_kombu_and_celeriac_read_each_others_yaml(serializer: YamlSerializer, value: Any) -> None:
    serialization = pytest.importorskip("kombu.serialization")
    content_type, encoding, data = serialization.dumps(value, serializer="yaml")
    assert (content_type, encoding) == (serializer.content_type, serializer.content_encoding)
    assert serializer.loads(data.encode(encoding) if isinstance(data, str) else data) == value
    ours = serializer.dumps(value)
    assert serialization.loads(ours, content_type, encoding, accept=[content_type]) == value


# --- safe loading and errors ---------------------------------------------------------------------


def test_python_object_is_refused_with_a_clear_error(serializer: YamlSerializer) -> None:
    with pytest.raises(MessageError) as info:
        serializer.loads(b"!!python/object:collections.OrderedDict {}\n")
    assert str(info.value) == (
        "refused YAML tag 'tag:yaml.org,2002:python/object:collections.OrderedDict': only standard "
        "YAML types are loaded (safe loading); Python objects are never built from a message"
    )


@pytest.mark.parametrize(
    "document",
    [
        b"!!python/object/apply:os.system ['touch {marker}']",
        b"!!python/object/new:os.system ['touch {marker}']",
        b"[!!python/name:os.system ]",
        b"key: !!python/tuple [1, 2]",
    ],
)
def test_no_python_tag_runs_anything(serializer: YamlSerializer, tmp_path: Path, document: bytes) -> None:
    marker = tmp_path / "ran"
    with pytest.raises(MessageError, match=r"refused YAML tag 'tag:yaml\.org,2002:python/"):
        serializer.loads(document.replace(b"{marker}", str(marker).encode()))
    assert not marker.exists()


def test_unknown_tag_is_refused(serializer: YamlSerializer) -> None:
    expected = r"^refused YAML tag '!custom': only standard YAML types are loaded \(safe loading\)$"
    with pytest.raises(MessageError, match=expected):
        serializer.loads(b"!custom 1")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"a: [", "invalid YAML: while parsing a flow node"),
        (b"--- 1\n--- 2\n", "invalid YAML: expected a single document in the stream"),
        (b"!!binary 'zz!'", "invalid YAML: failed to decode base64 data"),
        (b"{[1]: 2}", "invalid YAML: while constructing a mapping"),
    ],
    ids=["syntax", "two-documents", "bad-binary", "unhashable-key"],
)
def test_invalid_documents(serializer: YamlSerializer, data: bytes, message: str) -> None:
    with pytest.raises(MessageError, match=message):
        serializer.loads(data)


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (dt.time(1, 2), "time"),
        (uuid.UUID(int=1), "UUID"),
        (Decimal("1.5"), "Decimal"),
        ([object()], "object"),
    ],
)
def test_types_safe_yaml_lacks_are_refused(serializer: YamlSerializer, value: Any, kind: str) -> None:
    expected = f"cannot encode an object of type {kind} as YAML: safe YAML carries"
    with pytest.raises(SerializationError, match=expected):
        serializer.dumps(value)


def test_lone_surrogate_is_refused(serializer: YamlSerializer) -> None:
    with pytest.raises(SerializationError, match="cannot encode value as YAML"):
        serializer.dumps("\udc80")


def test_recursive_value_round_trips_through_an_anchor(serializer: YamlSerializer) -> None:
    loop: list[Any] = []
    loop.append(loop)
    data = serializer.dumps(loop)
    assert data == b"&id001\n- *id001\n"
    loaded = serializer.loads(data)
    assert loaded[0] is loaded


# --- plugin surface ------------------------------------------------------------------------------


def test_is_a_serializer_with_kombus_names() -> None:
    serializer = YamlSerializer()
    assert isinstance(serializer, Serializer)
    assert (serializer.name, serializer.content_type, serializer.content_encoding) == (
        "yaml",
        "application/x-yaml",
        "utf-8",
    )


def test_importing_the_plugin_does_not_import_yaml() -> None:
    code = "import sys, celeriac_yaml; print('yaml' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_pickles_after_use(serializer: YamlSerializer) -> None:
    import pickle

    data = serializer.dumps([dt.date(2024, 5, 17)])
    assert pickle.loads(pickle.dumps(serializer)).loads(data) == [dt.date(2024, 5, 17)]


def test_entry_point_is_registered() -> None:
    (point,) = [ep for ep in entry_points(group="celeriac.plugins") if ep.name == "yaml"]
    assert point.value == "celeriac_yaml"
    assert point.load() is celeriac_yaml


def test_hook_offers_the_serializer() -> None:
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    manager.register(celeriac_yaml, name="yaml")
    manager.check_pending()
    (offered,) = manager.hook.celeriac_add_serializers(config=Config())
    assert [type(s) for s in offered] == [YamlSerializer]


# --- through a worker ----------------------------------------------------------------------------


@needs_pool
def test_task_arguments_and_result_cross_a_worker(app: Celeriac) -> None:
    @app.task
    def echo(when: dt.datetime, day: dt.date, raw: bytes, tags: set[str]) -> list[Any]:
        return [when, day, raw, tags]

    args = (dt.datetime(2024, 5, 17, 13, 45, tzinfo=dt.UTC), dt.date(2024, 5, 17), b"\xff", {"a", "b"})
    with worker_thread(app):
        result = echo.delay(*args)
        assert result.get(timeout=5) == list(args)
    assert app.result_store.get(result.id).content_type == "application/x-yaml"  # type: ignore[union-attr]


@needs_pool
def test_unsafe_document_is_dead_lettered_and_worker_goes_on(app: Celeriac, tmp_path: Path) -> None:
    @app.task
    def ping() -> str:
        return "pong"

    marker = tmp_path / "ran"
    envelope = app.codec.encode_task(TaskMessage(id="evil-1", task=ping.name))
    body = f"!!python/object/apply:os.system ['touch {marker}']".encode()
    app.transport.publish("celery", [attrs.evolve(envelope, body=body)])
    with worker_thread(app):
        letter = wait_for_dead_letter(app)
        assert ping.delay().get(timeout=5) == "pong"
    assert letter.reason.startswith("cannot decode message: refused YAML tag 'tag:yaml.org,2002:python/")
    assert app.AsyncResult("evil-1").state == states.FAILURE
    assert not marker.exists()
