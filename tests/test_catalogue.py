"""A mistyped URL scheme or pool name names the real plugin to install, never a guessed one."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

import celeriac_json
from celeriac import Celeriac
from celeriac._contract.catalogue import KNOWN
from celeriac._model.errors import PluginError
from celeriac.testing import subprocess_env

REPOSITORY = Path(__file__).resolve().parents[1]


@pytest.fixture
def bare() -> Celeriac:
    """An app with no plugin installed but json (and the kernel's memory://)."""
    return Celeriac("t", config=False, env={}, autoload_plugins=False, plugins=[celeriac_json])


@pytest.fixture
def full() -> Celeriac:
    """An app with every plugin of the workspace."""
    return Celeriac("t", config=False, env={})


def test_typo_names_the_plugin_to_install(bare: Celeriac) -> None:
    with pytest.raises(PluginError) as caught:
        bare.plugins.transport("redsi://localhost:6379/0")
    message = str(caught.value)
    assert "Did you mean 'redis://'? Install celeriac-redis, which provides it." in message
    assert "celeriac-redsi" not in message


def test_typo_of_an_installed_scheme_names_the_installed_plugin(full: Celeriac) -> None:
    installed = r"Did you mean 'redis://'\? The installed plugin 'redis' provides it"
    with pytest.raises(PluginError, match=installed):
        full.plugins.result_store("redsi://localhost:6379/0")
    with pytest.raises(PluginError, match=r"Did you mean 'rpc://'\?"):
        full.plugins.result_store("rcp://")


def test_known_scheme_not_installed(bare: Celeriac) -> None:
    with pytest.raises(PluginError, match=r"'amqp'.*Install celeriac-amqp, which provides it\.$"):
        bare.plugins.transport("amqp://guest@localhost//")


def test_unknown_scheme_lists_the_distributions_of_its_kind(bare: Celeriac) -> None:
    with pytest.raises(PluginError) as caught:
        bare.plugins.transport("zookeeper://localhost")
    assert str(caught.value).endswith(
        "No plugin of the celeriac project provides it; those providing a transport are "
        "celeriac-amqp, celeriac-redis, celeriac-sqlite, celeriac-sqs."
    )
    assert "celeriac-zookeeper" not in str(caught.value)


def test_mistyped_pool(bare: Celeriac) -> None:
    with pytest.raises(PluginError, match=r"Did you mean 'eventlet'\? Install celeriac-eventlet"):
        bare.plugins.pool("evenlet")


def test_the_command_line_shows_the_hint(tmp_path: Path) -> None:
    (tmp_path / "celeriac.toml").write_text('broker = "redsi://127.0.0.1:6379/0"\n')
    done = subprocess.run(
        [sys.executable, "-m", "celeriac", "call", "proj.add"],
        cwd=tmp_path,
        env=subprocess_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "Did you mean 'redis://'? The installed plugin 'redis' provides it." in done.stderr


def test_catalogue_covers_every_plugin_of_this_repository(full: Celeriac) -> None:
    """Each scheme and pool a plugin of this repository provides is in the catalogue, with its
    distribution: a new one added without updating celeriac/_catalogue.py fails here."""
    in_repository = {
        ep.name: ep.dist.name
        for ep in entry_points(group="celeriac.plugins")
        if ep.dist is not None and (REPOSITORY / "plugins" / ep.dist.name.removeprefix("celeriac-")).is_dir()
    }
    assert "redis" in in_repository  # the workspace is installed
    hooks = {
        "transport": "celeriac_add_transports",
        "result store": "celeriac_add_result_stores",
        "schedule store": "celeriac_add_schedule_stores",
    }
    found = {kind: full.plugins._schemes(hook) for kind, hook in hooks.items()}
    found["pool"] = full.plugins._named("celeriac_add_pools", lambda spec: [spec.name])
    for kind, names in found.items():
        for name, (_, plugin) in names.items():
            if plugin in in_repository:
                distribution = in_repository[plugin]
                missing = f"add {kind} {name!r} = {distribution!r} to celeriac/_catalogue.py"
                assert KNOWN[kind].get(name) == distribution, missing
