"""Time serialize+deserialize of a typical task body with each installed serializer.

Run: ``python benchmarks/serializers.py [--number N] [--runs R] [--key-size BITS]``.

The body is a protocol 2 task body, ``[args, kwargs, embed]``, with 10 arguments of mixed
types (integers, a float, text with and without non-ASCII characters, a bool, None, a list,
bytes, an aware datetime, a nested dict) and a nested dict in the keyword arguments: only
types that every serializer here carries, so each row encodes the same value. Each row is
the median of ``R`` runs of ``N`` dumps+loads round trips, in microseconds per round trip, and
relative to json with the standard-library backend. Rows whose plugin or library is not
installed are listed as skipped.

Rows: json (stdlib backend), json (orjson backend), msgpack, yaml, pickle, auth (celeriac-signing
over json, with an RSA key and a self-signed certificate made at start) and json+zlib (the
json body compressed with celeriac-compression's zlib, whatever the threshold).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import platform
import statistics
import sys
import tempfile
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

from attrs import frozen
from rich.console import Console
from rich.table import Table

DEFAULT_NUMBER = 1_000
DEFAULT_RUNS = 5
BASELINE = "json (stdlib)"

EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}


def task_body() -> list[Any]:
    """A protocol 2 body: 10 arguments of mixed types and a nested dict in the kwargs."""
    args = (
        42,
        -(2**40),
        3.14159,
        "user@example.com",
        "naïve café ☕",
        True,
        None,
        [1, 2, 3, "four", 5.5],
        b"\x00\x01\x02 binary \xff",
        dt.datetime(2024, 5, 17, 13, 45, 30, 123456, tzinfo=dt.UTC),
    )
    kwargs = {
        "order": {
            "id": 1234,
            "customer": {"name": "Ann Example", "email": "ann@example.com", "vip": False},
            "items": [
                {"sku": "A-100", "qty": 2, "price": 9.99},
                {"sku": "B-200", "qty": 1, "price": 24.5},
                {"sku": "C-300", "qty": 5, "price": 0.75},
            ],
            "shipping": {"country": "FR", "express": True, "notes": None},
        },
        "retries": 3,
        "tags": ["billing", "eu"],
    }
    return [args, kwargs, EMBED]


@frozen
class Case:
    """One row: how to serialize and deserialize, or why it cannot run here."""

    name: str
    content_type: str
    dumps: Callable[[Any], bytes] | None = None
    loads: Callable[[bytes], Any] | None = None
    missing: str | None = None


def _missing(name: str, why: str) -> Case:
    return Case(name=name, content_type="-", missing=why)


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def json_case(backend: str) -> Case:
    name = f"json ({backend})"
    if not _installed("celeriac_json"):
        return _missing(name, "celeriac-json is not installed")
    if backend == "orjson" and not _installed("orjson"):
        return _missing(name, "orjson is not installed (celeriac-json[fast])")
    from celeriac_json import JsonSerializer

    serializer = JsonSerializer(backend="orjson" if backend == "orjson" else "stdlib")
    return Case(name, serializer.content_type, serializer.dumps, serializer.loads)


def msgpack_case() -> Case:
    if not (_installed("celeriac_msgpack") and _installed("msgpack")):
        return _missing("msgpack", "celeriac-msgpack or msgpack is not installed")
    from celeriac_msgpack import MsgpackSerializer

    serializer = MsgpackSerializer()
    return Case("msgpack", serializer.content_type, serializer.dumps, serializer.loads)


def yaml_case() -> Case:
    if not (_installed("celeriac_yaml") and _installed("yaml")):
        return _missing("yaml", "celeriac-yaml or PyYAML is not installed")
    import yaml

    from celeriac_yaml import YamlSerializer

    serializer = YamlSerializer()
    name = "yaml (libyaml)" if hasattr(yaml, "CSafeLoader") else "yaml (pure Python)"
    return Case(name, serializer.content_type, serializer.dumps, serializer.loads)


def pickle_case() -> Case:
    if not _installed("celeriac_pickle"):
        return _missing("pickle", "celeriac-pickle is not installed")
    from celeriac_pickle import PickleSerializer

    serializer = PickleSerializer()
    return Case(
        f"pickle (protocol {serializer.protocol})",
        serializer.content_type,
        serializer.dumps,
        serializer.loads,
    )


def _write_identity(directory: Path, key_size: int) -> tuple[Path, Path]:
    """Write an RSA key and a self-signed certificate for it; return their paths."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Benchmark"),
            x509.NameAttribute(NameOID.COMMON_NAME, "bench producer"),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    key_path, certificate_path = directory / "bench.key", directory / "bench.crt"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return key_path, certificate_path


def signing_case(directory: Path, key_size: int) -> Case:
    name = f"auth (RSA {key_size}, json inside)"
    if not (_installed("celeriac_signing") and _installed("cryptography") and _installed("celeriac_json")):
        return _missing(name, "celeriac-signing, cryptography or celeriac-json is not installed")
    from celeriac_json import JsonSerializer
    from celeriac_signing import SigningConfig
    from celeriac_signing import SigningSerializer

    key, certificate = _write_identity(directory, key_size)
    section = SigningConfig(key=str(key), certificate=str(certificate), trusted=[str(certificate)])
    serializer = SigningSerializer.from_config(section, inner=JsonSerializer())
    return Case(name, serializer.content_type, serializer.dumps, serializer.loads)


def zlib_case() -> Case:
    name = "json + zlib"
    if not (_installed("celeriac_compression") and _installed("celeriac_json")):
        return _missing(name, "celeriac-compression or celeriac-json is not installed")
    from celeriac_compression import ZlibCompressor
    from celeriac_json import JsonSerializer

    serializer, compressor = JsonSerializer(), ZlibCompressor()

    def dumps(value: Any) -> bytes:
        return compressor.compress(serializer.dumps(value))

    def loads(data: bytes) -> Any:
        return serializer.loads(compressor.decompress(data))

    return Case(f"json ({serializer.backend}) + zlib", serializer.content_type, dumps, loads)


def measure(case: Case, body: Any, number: int, runs: int) -> float:
    """Median microseconds per dumps+loads round trip over ``runs`` runs of ``number``."""
    dumps, loads = case.dumps, case.loads
    if dumps is None or loads is None:
        raise ValueError(f"{case.name} cannot run: {case.missing}")

    def round_trip() -> None:
        loads(dumps(body))

    round_trip()  # warm up: lazy imports, codec choice
    timings = [timeit.timeit(round_trip, number=number) / number * 1e6 for _ in range(runs)]
    return statistics.median(timings)


def check(case: Case, body: Any) -> int:
    """Round-trip once, check the value came back, and return the encoded size in bytes."""
    dumps, loads = case.dumps, case.loads
    if dumps is None or loads is None:
        raise ValueError(f"{case.name} cannot run: {case.missing}")
    data = dumps(body)
    args, kwargs, _ = loads(data)
    if list(args) != list(body[0]) or kwargs != body[1]:
        raise AssertionError(f"{case.name} did not round-trip the body: {args!r}, {kwargs!r}")
    return len(data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--number", type=int, default=DEFAULT_NUMBER, help="round trips per run")
    parser.add_argument("--runs", type=int, default=DEFAULT_RUNS, help="runs; the median is reported")
    parser.add_argument("--key-size", type=int, default=2048, help="RSA key size for auth (bits)")
    options = parser.parse_args(argv)
    console = Console()
    if not console.is_terminal:  # piped or in CI: do not fold the table to 80 columns
        console = Console(width=120)
    body = task_body()

    with tempfile.TemporaryDirectory(prefix="celeriac-bench-") as directory:
        cases = [
            json_case("stdlib"),
            json_case("orjson"),
            msgpack_case(),
            yaml_case(),
            pickle_case(),
            signing_case(Path(directory), options.key_size),
            zlib_case(),
        ]
        absent = [case for case in cases if case.missing is not None]
        if absent:
            # make bench installs every serializer; a row left out would be a silent gap.
            for case in absent:
                console.print(f"[red]error:[/] {case.name} cannot be measured: {case.missing}")
            return 2
        results: list[tuple[Case, int, float]] = []
        with console.status("timing serializers...") as status:
            for case in cases:
                if case.missing is None:
                    status.update(f"timing {case.name} ({options.runs} x {options.number} round trips)...")
                    size = check(case, body)
                    results.append((case, size, measure(case, body, options.number, options.runs)))

    baseline = next((micros for case, _, micros in results if case.name == BASELINE), None)
    table = Table(
        title=(
            f"serialize + deserialize a protocol 2 task body (10 args, nested dict): median of "
            f"{options.runs} runs x {options.number} round trips"
        ),
        caption=f"Python {platform.python_version()} on {platform.machine()}; relative to {BASELINE}",
    )
    table.add_column("serializer", no_wrap=True)
    table.add_column("content type", no_wrap=True)
    table.add_column("bytes", justify="right")
    table.add_column("µs / round trip", justify="right")
    table.add_column(f"vs {BASELINE}", justify="right")
    for case, size, micros in results:
        relative = f"{micros / baseline:.2f}x" if baseline else "-"
        table.add_row(case.name, case.content_type, str(size), f"{micros:,.1f}", relative)
    console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
