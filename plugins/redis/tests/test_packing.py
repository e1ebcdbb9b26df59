"""The packed envelope: whichever JSON library writes and reads it, the values are the json module's."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import pytest

from celeriac import MessageError
from celeriac.plugin import Envelope
from celeriac_redis import _packing

CASES: list[dict[Any, Any]] = [
    {"lang": "py", "task": "t", "id": "1", "eta": None, "retries": 0, "timelimit": [None, 1.5], "stamps": {}},
    {"small": 1e-05, "large": 1e16, "zero": -0.0, "tiny": 5e-324, "max": 1.7976931348623157e308},
    {"edge": 2**63, "top": 2**64 - 1, "beyond": 2**64, "low": -(2**63) - 1, "huge": 10**30},
    {"text": 'é\u2028\x00"\\', "surrogate": "\ud800", "tuple": (1, (2, 3)), "bool": True},
    {"nan": float("nan"), "inf": float("-inf")},
    {1: "int key", None: "none key", 2.5: "float key"},
    {"when": dt.datetime(2026, 1, 1, tzinfo=dt.UTC), "id": uuid.UUID(int=7), "set": {1}},
    {"deep": [[[[[[[[[[[[1]]]]]]]]]]]]},
]


def _reference(value: dict[Any, Any]) -> Any:
    return json.loads(json.dumps(value, separators=(",", ":"), default=str))


@pytest.mark.parametrize("headers", CASES)
@pytest.mark.parametrize("fast", [True, False], ids=["orjson", "json"])
def test_values_read_back_as_the_json_module_writes_them(
    headers: dict[Any, Any], fast: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not fast:
        monkeypatch.setattr(_packing, "_orjson", None)
    elif _packing._orjson is None:
        pytest.skip("orjson is not installed")
    envelope = Envelope(
        body=b"\x00body", content_type="application/json", headers=headers, properties={"priority": 3}
    )
    unpacked = _packing.unpack(_packing.pack(envelope))
    assert repr(unpacked.headers) == repr(_reference(headers))  # repr: nan == nan
    assert (unpacked.body, unpacked.properties) == (b"\x00body", {"priority": 3})


def test_plain_headers_take_the_fast_path() -> None:
    if _packing._orjson is None:
        pytest.skip("orjson is not installed")
    assert _packing._plain(CASES[0])
    assert not _packing._plain(CASES[2]) and not _packing._plain(CASES[5]) and not _packing._plain(CASES[6])


def test_garbage_is_a_message_error() -> None:
    with pytest.raises(MessageError):
        _packing.unpack(b"\x00\x01")
    packed = _packing.pack(Envelope(body=b"", content_type="a", headers={}))
    with pytest.raises(MessageError):
        _packing.unpack(packed[:12] + b"a" + b"\xff" * (len(packed) - 13))
