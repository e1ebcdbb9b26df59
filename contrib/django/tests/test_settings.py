"""Where the app's configuration comes from: settings.CELERIAC, a TOML file, or the project's own app."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from celeriac import Celeriac
from celeriac_django import get_app
from celeriac_django._app import build_app

explicit_app = Celeriac("explicit", broker="memory://", config=False, env={}, set_as_current=False)


def test_settings_dict_is_the_whole_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A celeriac.toml in the working directory is not read when settings.CELERIAC is given.
    (tmp_path / "celeriac.toml").write_text('broker = "redis://127.0.0.1:1/0"\n')
    monkeypatch.chdir(tmp_path)
    with override_settings(CELERIAC={"broker": "memory://", "worker": {"concurrency": 3}}):
        app = build_app()
    assert app.config.broker == "memory://"
    assert app.config.worker.concurrency == 3
    assert app.config_file is None
    assert app.import_path == "celeriac_django.app:app"


def test_file_named_in_settings_with_dict_overrides(tmp_path: Path) -> None:
    path = tmp_path / "queue.toml"
    path.write_text('broker = "memory://"\ndefault_queue = "from-file"\n[worker]\nconcurrency = 5\n')
    with override_settings(CELERIAC_CONFIG=str(path), CELERIAC={"default_queue": "from-settings"}):
        app = build_app()
    assert app.config_file == path
    assert app.config.worker.concurrency == 5
    assert app.config.default_queue == "from-settings"


def test_no_settings_reads_celeriac_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "celeriac.toml").write_text('broker = "memory://"\ndefault_queue = "toml"\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CELERIAC_CONFIG", raising=False)
    with override_settings():
        from django.conf import settings

        del settings.CELERIAC
        app = build_app()
    assert app.config.default_queue == "toml"


def test_explicit_app_module() -> None:
    with override_settings(CELERIAC_APP=f"{__name__}:explicit_app"):
        assert build_app() is explicit_app


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("CELERIAC", "memory://", "settings.CELERIAC must be a dict"),
        ("CELERIAC_APP", "proj.celeriac", 'settings.CELERIAC_APP must be "module:attribute"'),
        ("CELERIAC_APP", "celeriac_django._app:IMPORT_PATH", "is not a Celeriac app"),
        ("CELERIAC_CONFIG", "/nonexistent/celeriac.toml", "does not exist"),
    ],
)
def test_bad_settings_name_the_setting(setting: str, value: str, message: str) -> None:
    with override_settings(**{setting: value}), pytest.raises(ImproperlyConfigured, match=message):
        build_app()


def test_unknown_key_is_celeriacs_config_error() -> None:
    from celeriac import ConfigError

    with override_settings(CELERIAC={"brokr": "memory://"}), pytest.raises(ConfigError, match="did you mean"):
        build_app()


def test_one_app_per_project() -> None:
    assert get_app() is get_app()
    assert get_app().config.broker == "memory://"


def test_the_cli_path_gives_the_same_app() -> None:
    import celeriac_django.app

    assert celeriac_django.app.app is get_app()
    with pytest.raises(AttributeError):
        _ = celeriac_django.app.other
