"""Tests for celeriac-pickle: kombu's wire format, refusal unless accepted, the start-up warning."""

from __future__ import annotations

import datetime as dt
import logging
import pickle
import uuid
from collections.abc import Iterator
from decimal import Decimal
from importlib.metadata import entry_points
from typing import Any

import attrs
import pluggy
import pytest

import celeriac_pickle
from celeriac import Celeriac
from celeriac import ConfigError
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
from celeriac_pickle import PickleConfig
from celeriac_pickle import PickleSerializer

needs_pool = pytest.mark.skipif(
    not any(ep.name == "threads" for ep in entry_points(group="celeriac.plugins")),
    reason="the worker's default pool comes from celeriac-threads, which is not installed",
)


class Point:
    """A class pickle carries and JSON cannot."""

    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)

    def __hash__(self) -> int:
        return hash((self.x, self.y))


def make_app(**settings: Any) -> Celeriac:
    return Celeriac("tests", broker="memory://", plugins=[testing], env={}, config=False, **settings)


@pytest.fixture
def app() -> Iterator[Celeriac]:
    instance = make_app()
    yield instance
    instance.close()


@pytest.fixture
def pickle_app() -> Iterator[Celeriac]:
    instance = make_app(serializer="pickle", result_serializer="pickle", accept=["json", "pickle"])
    yield instance
    instance.close()


def wait_for_dead_letter(app: Celeriac, timeout: float = 5.0) -> DeadLetter:
    [letter] = wait_for(app.transport.dead_letters, timeout, "a dead-lettered message")
    return letter


VALUES: list[Any] = [
    None,
    True,
    2**100,
    float("inf"),
    "é☃",
    b"\xff\x00",
    (1, (2, 3)),
    {1, 2},
    frozenset({"a"}),
    {"when": dt.datetime(2024, 5, 17, 13, 45, tzinfo=dt.UTC), (1, 2): [dt.date(2024, 1, 1)]},
    [dt.time(1, 2, 3), uuid.UUID(int=7), Decimal("1.10"), dt.timedelta(seconds=3)],
    Point(1, 2),
]


# --- the serializer --------------------------------------------------------------------------


@pytest.mark.parametrize("value", VALUES, ids=[type(v).__name__ for v in VALUES])
def test_round_trip_keeps_python_types(value: Any) -> None:
    serializer = PickleSerializer()
    loaded = serializer.loads(serializer.dumps(value))
    assert loaded == value
    assert type(loaded) is type(value)


def test_is_a_serializer_with_kombus_names() -> None:
    serializer = PickleSerializer()
    assert isinstance(serializer, Serializer)
    assert (serializer.name, serializer.content_type, serializer.content_encoding) == (
        "pickle",
        "application/x-python-serialize",
        "binary",
    )


@pytest.mark.parametrize("protocol", [2, 4, pickle.HIGHEST_PROTOCOL])
def test_writes_the_protocol_asked(protocol: int) -> None:
    data = PickleSerializer(protocol=protocol).dumps([1])
    assert data[:2] == bytes([0x80, protocol])  # the PROTO opcode opens every pickle since protocol 2


def test_default_protocol_is_kombus() -> None:
    assert PickleSerializer().dumps([1])[:2] == b"\x80\x04"


@pytest.mark.parametrize("protocol", [0, 1, pickle.HIGHEST_PROTOCOL + 1])
def test_protocol_out_of_range(protocol: int) -> None:
    with pytest.raises(ValueError, match="protocol must be between 2 and"):
        PickleSerializer(protocol=protocol)


def test_unpicklable_value_is_a_serialization_error() -> None:
    with pytest.raises(SerializationError, match="cannot pickle list"):
        PickleSerializer().dumps([lambda: None])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not a pickle", "cannot unpickle body: UnpicklingError"),
        (pickle.dumps([1, 2])[:-3], "cannot unpickle body"),
        (b"cnowhere\nGone\n.", "ModuleNotFoundError: No module named 'nowhere'"),
    ],
    ids=["garbage", "truncated", "unknown-class"],
)
def test_unreadable_body_is_a_message_error(data: bytes, message: str) -> None:
    with pytest.raises(MessageError, match=message):
        PickleSerializer().loads(data)


# --- kombu's wire format -----------------------------------------------------------------------


def test_kombu_and_celeriac_read_each_others_pickles() -> None:
    serialization = pytest.importorskip("kombu.serialization")
    value = [(1, 2), {"x": {3}}, dt.date(2024, 5, 17)]
    content_type, encoding, data = serialization.dumps(value, serializer="pickle")
    serializer = PickleSerializer()
    assert (content_type, encoding) == (serializer.content_type, serializer.content_encoding)
    assert data == serializer.dumps(value)
    assert serializer.loads(data) == value
    ours = serializer.dumps(value)
    assert serialization.loads(ours, content_type, encoding, accept=[content_type]) == value


# --- configuration and plugin surface ----------------------------------------------------------


def test_protocol_comes_from_the_pickle_section() -> None:
    app = make_app(pickle={"protocol": 5})
    assert app.codec.serializer("pickle").dumps(1)[:2] == b"\x80\x05"


def test_invalid_protocol_in_config() -> None:
    with pytest.raises(ConfigError, match="protocol must be between 2 and"):
        make_app(pickle={"protocol": 1})


def test_entry_point_is_registered() -> None:
    (point,) = [ep for ep in entry_points(group="celeriac.plugins") if ep.name == "pickle"]
    assert point.value == "celeriac_pickle"
    assert point.load() is celeriac_pickle


def test_hooks() -> None:
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    manager.register(celeriac_pickle, name="pickle")
    manager.check_pending()
    (offered,) = manager.hook.celeriac_add_serializers(config=Config())
    assert [type(s) for s in offered] == [PickleSerializer]
    ((section,),) = manager.hook.celeriac_add_config_sections()
    assert (section.name, section.cls) == ("pickle", PickleConfig)


def test_accepts_pickle_by_name_or_content_type() -> None:
    assert not celeriac_pickle.accepts_pickle(Config())
    assert celeriac_pickle.accepts_pickle(Config(accept=("json", "pickle")))
    assert celeriac_pickle.accepts_pickle(Config(accept=("application/x-python-serialize",)))


# --- through a worker ---------------------------------------------------------------------------


@needs_pool
def test_default_accept_dead_letters_pickle_and_keeps_running(
    app: Celeriac, caplog: pytest.LogCaptureFixture
) -> None:
    @app.task
    def ping() -> str:
        return "pong"

    caplog.set_level(logging.WARNING, logger="celeriac.pickle")
    pickled = ping.apply_async(serializer="pickle")
    assert app.transport.queue_length("celery") == 1
    with worker_thread(app):
        letter = wait_for_dead_letter(app)
        assert ping.delay().get(timeout=5) == "pong"
    assert letter.envelope.content_type == "application/x-python-serialize"
    assert "refused content type 'application/x-python-serialize'" in letter.reason
    assert "add it to 'accept' to trust it" in letter.reason
    assert pickled.state == states.FAILURE
    assert not [r for r in caplog.records if r.name == "celeriac.pickle"]


@needs_pool
def test_accepted_pickle_runs_and_warns_at_start(
    pickle_app: Celeriac, caplog: pytest.LogCaptureFixture
) -> None:
    @pickle_app.task
    def shift(point: Point, by: set[int]) -> tuple[Point, frozenset[int]]:
        return Point(point.x + 1, point.y + 1), frozenset(by)

    caplog.set_level(logging.WARNING, logger="celeriac.pickle")
    with worker_thread(pickle_app):
        assert shift.delay(Point(1, 2), {3}).get(timeout=5) == (Point(2, 3), frozenset({3}))
    [warning] = [r for r in caplog.records if r.name == "celeriac.pickle"]
    assert warning.levelno == logging.WARNING
    assert "accepts pickle" in warning.getMessage()
    assert "run arbitrary code" in warning.getMessage()


@needs_pool
def test_corrupt_pickle_is_dead_lettered_with_the_reason(pickle_app: Celeriac) -> None:
    @pickle_app.task
    def ping() -> str:
        return "pong"

    envelope = pickle_app.codec.encode_task(TaskMessage(id="bad-1", task=ping.name))
    assert envelope.content_type == "application/x-python-serialize"
    pickle_app.transport.publish("celery", [attrs.evolve(envelope, body=b"junk")])
    with worker_thread(pickle_app):
        letter = wait_for_dead_letter(pickle_app)
        assert ping.delay().get(timeout=5) == "pong"
    assert "cannot decode message: cannot unpickle body" in letter.reason
    assert pickle_app.AsyncResult("bad-1").state == states.FAILURE
