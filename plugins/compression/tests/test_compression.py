"""Tests for celeriac-compression: kombu's content types both ways, limits, and a real worker."""

from __future__ import annotations

import bz2
import json
import lzma
import random
import subprocess
import sys
import zlib
from collections.abc import Iterator
from importlib.metadata import entry_points
from typing import Any

import attrs
import pluggy
import pytest

import celeriac_compression
from celeriac import Celeriac
from celeriac import ConfigError
from celeriac import MessageError
from celeriac import PluginError
from celeriac import states
from celeriac import testing
from celeriac.plugin import Compressor
from celeriac.plugin import Config
from celeriac.plugin import DeadLetter
from celeriac.plugin import Envelope
from celeriac.plugin import TaskMessage
from celeriac.plugin import hookspecs
from celeriac.testing import wait_for
from celeriac.testing import worker_thread
from celeriac_compression import Bzip2Compressor
from celeriac_compression import CompressionConfig
from celeriac_compression import LzmaCompressor
from celeriac_compression import TooLargeError
from celeriac_compression import ZlibCompressor
from celeriac_compression import ZstdCompressor
from celeriac_compression import zstd_backends

needs_pool = pytest.mark.skipif(
    not any(ep.name == "threads" for ep in entry_points(group="celeriac.plugins")),
    reason="the worker's default pool comes from celeriac-threads, which is not installed",
)
HAS_ZSTD = bool(zstd_backends())
needs_zstd = pytest.mark.skipif(not HAS_ZSTD, reason="no zstd library (extra 'zstd', or zstandard)")

# name -> (content type kombu puts in the header, a kombu alias)
KOMBU: dict[str, tuple[str, str]] = {
    "zlib": ("application/x-gzip", "gzip"),
    "bzip2": ("application/x-bz2", "bzip"),
    "lzma": ("application/x-lzma", "xz"),
    "zstd": ("application/zstd", "zstandard"),
}
NAMES = [
    "zlib",
    "bzip2",
    "lzma",
    pytest.param("zstd", marks=needs_zstd),
]
ZSTD_BACKENDS = [
    pytest.param(
        backend, marks=pytest.mark.skipif(backend not in zstd_backends(), reason=f"{backend} missing")
    )
    for backend in ("compression.zstd", "backports.zstd", "zstandard")
]


def make(name: str, **options: Any) -> Compressor:
    kinds: dict[str, Any] = {
        "zlib": ZlibCompressor,
        "bzip2": Bzip2Compressor,
        "lzma": LzmaCompressor,
        "zstd": ZstdCompressor,
    }
    compressor: Compressor = kinds[name](**options)
    return compressor


def make_app(**settings: Any) -> Celeriac:
    return Celeriac("tests", broker="memory://", plugins=[testing], env={}, config=False, **settings)


@pytest.fixture
def app() -> Iterator[Celeriac]:
    instance = make_app()
    yield instance
    instance.close()


def wait_for_dead_letter(app: Celeriac, timeout: float = 5.0) -> DeadLetter:
    [letter] = wait_for(app.transport.dead_letters, timeout, "a dead-lettered message")
    return letter


BODY = json.dumps([[{"row": i, "text": "celeriac " * 5} for i in range(200)], {}, {}]).encode()


# --- the compressors -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_round_trip(name: str) -> None:
    compressor = make(name)
    rnd = random.Random(7)
    for data in [b"", b"x", BODY, rnd.randbytes(100_000)]:
        compressed = compressor.compress(data)
        assert compressor.decompress(compressed) == data
    assert len(compressor.compress(BODY)) < len(BODY) // 5


@pytest.mark.parametrize("name", NAMES)
def test_names_and_content_types_are_kombus(name: str) -> None:
    compressor = make(name)
    assert isinstance(compressor, Compressor)
    assert (compressor.name, compressor.content_type) == (name, KOMBU[name][0])


@pytest.mark.parametrize("name", NAMES)
def test_kombu_reads_ours_and_we_read_kombus(name: str) -> None:
    compression = pytest.importorskip("kombu.compression")
    content_type, alias = KOMBU[name]
    if content_type not in compression.encoders():
        pytest.skip(f"kombu has no {name} support here")
    compressor = make(name)
    kombu_body, header = compression.compress(BODY, alias)
    assert header == content_type
    assert compressor.decompress(kombu_body) == BODY
    assert compression.decompress(compressor.compress(BODY), compressor.content_type) == BODY
    if name != "zstd":  # the standard library's one-shot functions, with kombu's default levels
        assert compressor.compress(BODY) == kombu_body


@needs_zstd
@pytest.mark.parametrize("writer", ZSTD_BACKENDS)
@pytest.mark.parametrize("reader", ZSTD_BACKENDS)
def test_zstd_backends_read_each_other(writer: Any, reader: Any) -> None:
    written = ZstdCompressor(backend=writer).compress(BODY)
    assert ZstdCompressor(backend=reader).decompress(written) == BODY


@needs_zstd
@pytest.mark.parametrize("backend", ZSTD_BACKENDS)
def test_zstd_reads_several_frames(backend: Any) -> None:
    compressor = ZstdCompressor(backend=backend)
    assert compressor.decompress(compressor.compress(b"abc") + compressor.compress(b"def")) == b"abcdef"


def test_zstd_backend_is_checked() -> None:
    with pytest.raises(ValueError, match="backend must be 'auto' or one of"):
        ZstdCompressor(backend="zstd")  # type: ignore[arg-type]


def test_zstd_without_a_library(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("celeriac_compression._compressors.zstd_backends", list)
    with pytest.raises(PluginError, match=r"pip install 'celeriac-compression\[zstd\]'"):
        ZstdCompressor().compress(b"x")


@pytest.mark.parametrize(("name", "stream_name"), [("bzip2", "bzip2"), ("lzma", "lzma")])
def test_concatenated_streams_are_read(name: str, stream_name: str) -> None:
    compressor = make(name)
    assert compressor.decompress(compressor.compress(b"abc") + compressor.compress(b"def")) == b"abcdef"


def test_lzma_reads_the_legacy_format() -> None:
    assert LzmaCompressor().decompress(lzma.compress(BODY, format=lzma.FORMAT_ALONE)) == BODY


# --- invalid and hostile bodies ----------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_garbage_is_a_message_error(name: str) -> None:
    with pytest.raises(MessageError, match=f"invalid {name} body"):
        make(name).decompress(b"definitely not compressed")


@pytest.mark.parametrize("name", NAMES)
def test_truncated_body_is_a_message_error(name: str) -> None:
    compressed = make(name).compress(BODY)
    with pytest.raises(MessageError, match=f"{name} body is truncated|invalid {name} body"):
        make(name).decompress(compressed[: len(compressed) // 2])


@pytest.mark.parametrize("name", NAMES)
def test_bomb_is_stopped_at_max_size(name: str) -> None:
    bomb = make(name, max_size=0).compress(bytes(20_000_000))
    assert len(bomb) < 100_000
    compressor = make(name, max_size=1_000_000)
    with pytest.raises(TooLargeError, match=f"{name} body expands to more than 1000000 bytes"):
        compressor.decompress(bomb)
    assert len(make(name, max_size=20_000_000).decompress(bomb)) == 20_000_000
    assert len(make(name, max_size=0).decompress(bomb)) == 20_000_000


@needs_zstd
@pytest.mark.parametrize("backend", ZSTD_BACKENDS)
def test_zstd_bomb_is_stopped_with_every_backend(backend: Any) -> None:
    bomb = ZstdCompressor(backend=backend).compress(bytes(20_000_000))
    with pytest.raises(TooLargeError):
        ZstdCompressor(backend=backend, max_size=1_000_000).decompress(bomb)
    with pytest.raises(TooLargeError):  # across frames too
        ZstdCompressor(backend=backend, max_size=30_000_000).decompress(bomb + bomb)


@pytest.mark.parametrize("name", ["bzip2", "lzma"])
def test_bomb_split_over_streams_is_stopped(name: str) -> None:
    part = make(name).compress(bytes(600_000))
    with pytest.raises(TooLargeError):
        make(name, max_size=1_000_000).decompress(part + part)


def test_zlib_ignores_data_after_the_stream_like_zlib_decompress() -> None:
    assert ZlibCompressor().decompress(zlib.compress(b"abc") + b"junk") == zlib.decompress(
        zlib.compress(b"abc") + b"junk"
    )


def test_bzip2_and_trailing_garbage() -> None:
    with pytest.raises(MessageError, match="invalid bzip2 body"):
        Bzip2Compressor().decompress(bz2.compress(b"abc") + b"junk")


@pytest.mark.parametrize("option", ["threshold", "max_size"])
def test_limits_cannot_be_negative(option: str) -> None:
    with pytest.raises(ValueError, match=f"{option} must be 0 or more"):
        ZlibCompressor(**{option: -1})


# --- configuration and plugin surface ----------------------------------------------------------


def test_hook_offers_every_compressor_under_kombus_names_too() -> None:
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    manager.register(celeriac_compression, name="compression")
    manager.check_pending()
    (offered,) = manager.hook.celeriac_add_compressors(config=Config())
    by_name = {compressor.name: compressor.content_type for compressor in offered}
    expected = {name: content_type for name, (content_type, _) in KOMBU.items()}
    expected |= {alias: content_type for content_type, alias in KOMBU.values()}
    if not HAS_ZSTD:
        expected = {k: v for k, v in expected.items() if v != "application/zstd"}
    assert by_name == expected
    assert {(c.threshold, c.max_size) for c in offered} == {(1024, 64 * 1024 * 1024)}  # type: ignore[attr-defined]
    ((section,),) = manager.hook.celeriac_add_config_sections()
    assert (section.name, section.cls) == ("compressors", CompressionConfig)


def test_compression_section_sets_the_limits() -> None:
    app = make_app(compression="lzma", **{"compressors.threshold": 10, "compressors.max_size": 99})
    compressor: Any = app.codec.compressor
    assert (compressor.name, compressor.threshold, compressor.max_size) == ("lzma", 10, 99)


def test_negative_threshold_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="threshold must be 0 or more"):
        make_app(**{"compressors.threshold": -1})


def test_unknown_compression_names_the_installed_ones() -> None:
    with pytest.raises(
        ConfigError, match=r"'compression' = 'brotli': no such compressor \(installed: bzip, bzip2"
    ):
        make_app(compression="brotli")


def test_importing_the_plugin_imports_no_zstd_library() -> None:
    code = (
        "import sys, celeriac_compression; "
        "print(sorted(m for m in ('zstandard', 'backports.zstd', 'compression.zstd') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_entry_point_is_registered() -> None:
    (point,) = [ep for ep in entry_points(group="celeriac.plugins") if ep.name == "compression"]
    assert point.value == "celeriac_compression"
    assert point.load() is celeriac_compression


# --- through the kernel and a worker -----------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_producer_compresses_and_sets_kombus_header(name: str) -> None:
    app = make_app(compression=name)
    envelope = app.codec.encode_task(TaskMessage(id="t1", task="tests.work", args=("x" * 5000,)))
    assert envelope.headers["compression"] == KOMBU[name][0]
    assert envelope.content_type == "application/json"
    assert make(name).decompress(envelope.body).startswith(b'[["' + b"x" * 100)


@needs_pool
@pytest.mark.parametrize("name", NAMES)
def test_round_trip_through_a_worker_with_compression_on(name: str) -> None:
    app = make_app(compression=name)

    @app.task
    def echo(text: str, rows: list[dict[str, int]]) -> list[Any]:
        return [text, rows]

    rows = [{"row": i} for i in range(500)]
    with worker_thread(app):
        assert echo.delay("y" * 3000, rows).get(timeout=5) == ["y" * 3000, rows]
    app.close()


@needs_pool
@pytest.mark.parametrize("name", NAMES)
def test_worker_decompresses_what_a_celery_producer_sent(app: Celeriac, name: str) -> None:
    """The body and header as kombu's Producer lays them out, to a worker with no compression set."""
    compression = pytest.importorskip("kombu.compression")
    content_type, alias = KOMBU[name]
    if content_type not in compression.encoders():
        pytest.skip(f"kombu has no {name} support here")

    @app.task(name="proj.add")
    def add(x: int, y: int) -> int:
        return x + y

    plain = app.codec.encode_task(TaskMessage(id="from-celery", task="proj.add", args=(2, 3)))
    body, header = compression.compress(plain.body, alias)
    app.transport.publish(
        "celery", [attrs.evolve(plain, body=body, headers={**plain.headers, "compression": header})]
    )
    with worker_thread(app):
        assert app.AsyncResult("from-celery").get(timeout=5) == 5


@needs_pool
def test_corrupt_compressed_body_is_dead_lettered_and_worker_goes_on(app: Celeriac) -> None:
    @app.task
    def ping() -> str:
        return "pong"

    plain = app.codec.encode_task(TaskMessage(id="broken", task=ping.name))
    headers = {**plain.headers, "compression": "application/x-bz2"}
    app.transport.publish("celery", [attrs.evolve(plain, headers=headers)])  # header says bzip2, body is not
    with worker_thread(app):
        letter = wait_for_dead_letter(app)
        assert ping.delay().get(timeout=5) == "pong"
    assert letter.reason.startswith(
        "cannot decode message: cannot decompress body (application/x-bz2): invalid bzip2"
    )
    assert app.AsyncResult("broken").state == states.FAILURE


@needs_pool
def test_bomb_is_dead_lettered_and_worker_goes_on() -> None:
    app = make_app(**{"compressors.max_size": 1_000_000})

    @app.task
    def ping() -> str:
        return "pong"

    plain = app.codec.encode_task(TaskMessage(id="bomb", task=ping.name))
    bomb = Envelope(
        body=zlib.compress(b"[[" + b" " * 50_000_000 + b"],{},{}]"),
        content_type="application/json",
        headers={**plain.headers, "compression": "application/x-gzip"},
        properties=plain.properties,
    )
    app.transport.publish("celery", [bomb])
    with worker_thread(app):
        letter = wait_for_dead_letter(app)
        assert ping.delay().get(timeout=5) == "pong"
    assert "zlib body expands to more than 1000000 bytes ([compressors] max_size)" in letter.reason
    app.close()


def test_bodies_below_the_threshold_are_sent_uncompressed() -> None:
    app = make_app(compression="zlib", **{"compressors.threshold": 1024})
    small = app.codec.encode_task(TaskMessage(id="small", task="tests.work", args=(1,)))
    large = app.codec.encode_task(TaskMessage(id="large", task="tests.work", args=("x" * 2000,)))
    assert large.headers.get("compression") == "application/x-gzip"
    assert "compression" not in small.headers
    assert json.loads(small.body)[0] == [1]
