"""Hypothesis keeps its files in a temporary directory, not in ``.hypothesis`` of the checkout."""

from __future__ import annotations

import shutil
import tempfile

import pytest

_HOME: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    try:
        from hypothesis import configuration
    except ImportError:
        return
    _HOME.append(tempfile.mkdtemp(prefix="celeriac-cron-hypothesis-"))
    configuration.set_hypothesis_home_dir(_HOME[-1])


def pytest_unconfigure(config: pytest.Config) -> None:
    for home in _HOME:
        shutil.rmtree(home, ignore_errors=True)
