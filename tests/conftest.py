"""Shared fixtures for the kernel tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from celeriac import Celeriac
from celeriac import testing


@pytest.fixture
def app() -> Iterator[Celeriac]:
    """An app on its own in-memory broker; no config file, no environment."""
    instance = Celeriac("tests", broker="memory://", plugins=[testing], env={}, config=False)
    yield instance
    instance.close()
