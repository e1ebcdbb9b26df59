"""Configuration: layering, provenance and errors that name file, key, value and expectation."""

from __future__ import annotations

from pathlib import Path

import pytest
from attrs import frozen

from celeriac import Celeriac
from celeriac import ConfigError
from celeriac import PluginError
from celeriac._model.config import build_config
from celeriac._model.config import read_layers
from celeriac.plugin import ConfigSection
from celeriac.plugin import hookimpl


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_any_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = build_config(read_layers(env={}), {})
    assert config.broker == "sqlite:///celeriac.sqlite3"
    assert config.acks_late is True
    assert config.accept == ("json",)
    assert config.source_of("broker") == "default"


def test_file_then_env_then_keywords(tmp_path: Path) -> None:
    file = write(tmp_path / "c.toml", 'broker = "sqlite:///a.db"\n[worker]\nconcurrency = 2\npool = "solo"\n')
    raw = read_layers(
        file,
        env={"CELERIAC_WORKER__CONCURRENCY": "8", "CELERIAC_ACKS_LATE": "false"},
        overrides={"broker": "sqlite:///b.db"},
    )
    config = build_config(raw, {})
    assert config.worker.concurrency == 8
    assert config.worker.pool == "solo"
    assert config.acks_late is False
    assert config.broker == "sqlite:///b.db"
    assert config.source_of("worker.pool") == str(file)
    assert config.source_of("worker.concurrency") == "env CELERIAC_WORKER__CONCURRENCY"
    assert config.source_of("broker") == "keyword"


def test_pyproject_tool_section_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "pyproject.toml", '[project]\nname = "x"\n[tool.celeriac]\ndefault_queue = "jobs"\n')
    monkeypatch.chdir(tmp_path)
    config = build_config(read_layers(env={}), {})
    assert config.default_queue == "jobs"
    assert config.source_of("default_queue") == "pyproject.toml"


def test_celeriac_config_env_names_the_file(tmp_path: Path) -> None:
    file = write(tmp_path / "other.toml", 'default_queue = "q"\n')
    assert build_config(read_layers(env={"CELERIAC_CONFIG": str(file)}), {}).default_queue == "q"


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        read_layers(tmp_path / "nope.toml", env={})


def test_unknown_key_names_file_key_value_and_suggests(tmp_path: Path) -> None:
    file = write(tmp_path / "c.toml", 'brokr = "x"\n')
    with pytest.raises(ConfigError) as info:
        build_config(read_layers(file, env={}), {})
    message = str(info.value)
    assert str(file) in message
    assert "'brokr'" in message
    assert "'x'" in message
    assert "did you mean 'broker'" in message


def test_nested_unknown_key_and_wrong_types_are_all_reported(tmp_path: Path) -> None:
    file = write(tmp_path / "c.toml", '[worker]\nconcurency = 3\npool = 5\n[tasks."a.b"]\nqueue = 1\n')
    with pytest.raises(ConfigError) as info:
        build_config(read_layers(file, env={"CELERIAC_WORKER__PREFETCH": "many"}), {})
    message = str(info.value)
    assert f"{file}: unknown key 'worker.concurency' = 3" in message
    assert f"{file}: key 'worker.pool' = 5: expected str" in message
    assert "env CELERIAC_WORKER__PREFETCH: key 'worker.prefetch' = 'many': expected int" in message
    assert "key 'tasks.a.b.queue' = 1: expected str" in message


def test_bool_is_not_coerced_from_string(tmp_path: Path) -> None:
    file = write(tmp_path / "c.toml", 'acks_late = "false"\n')
    with pytest.raises(ConfigError, match="'acks_late' = 'false': expected bool"):
        build_config(read_layers(file, env={}), {})


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    file = write(tmp_path / "c.toml", "broker = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        read_layers(file, env={})


@frozen(kw_only=True)
class ExampleSection:
    url: str = "http://localhost"
    retries: int = 3


class SectionPlugin:
    @hookimpl
    def celeriac_add_config_sections(self) -> list[ConfigSection]:
        return [ConfigSection(name="widget", cls=ExampleSection)]


def test_plugin_sections_are_structured_and_validated(tmp_path: Path) -> None:
    file = write(tmp_path / "c.toml", "[widget]\nretries = 5\n")
    app = Celeriac(config=file, env={}, plugins=[SectionPlugin()])
    assert app.config.section("widget", ExampleSection) == ExampleSection(retries=5)
    bad = write(tmp_path / "bad.toml", "[widget]\nretry = 5\n")
    with pytest.raises(ConfigError, match=r"unknown key 'widget\.retry'"):
        Celeriac(config=bad, env={}, plugins=[SectionPlugin()])


def test_section_of_an_unloaded_plugin_is_unknown(tmp_path: Path) -> None:
    file = write(tmp_path / "c.toml", "[widget]\nretries = 5\n")
    with pytest.raises(ConfigError, match="unknown key 'widget'"):
        Celeriac(config=file, env={})


def test_unknown_plugin_names_in_allow_or_deny_list(tmp_path: Path) -> None:
    file = write(tmp_path / "c.toml", '[plugins]\ndisable = ["no-such-plugin"]\n')
    with pytest.raises(PluginError, match="not installed: no-such-plugin"):
        Celeriac(config=file, env={})


@pytest.mark.parametrize("given", [{"enable": ["json"]}, "json", ["json"]])
def test_plugins_keyword_refuses_settings_instead_of_ignoring_them(given: object) -> None:
    """``plugins=`` registers plugin objects; the [plugins] section's settings given there
    used to register their keys (strings, no hooks) and load every installed plugin."""
    with pytest.raises(PluginError, match=r"plugins= takes plugin objects .* \[plugins\] enable"):
        Celeriac(broker="memory://", config=False, env={}, plugins=given)  # type: ignore[arg-type]


def test_keywords_override_the_file(tmp_path: Path) -> None:
    file = write(tmp_path / "c.toml", 'default_queue = "a"\n[worker]\npool = "solo"\n')
    app = Celeriac(config=file, env={}, default_queue="b", worker={"concurrency": 3})
    assert app.config.default_queue == "b"
    assert app.config.worker.pool == "solo"
    assert app.config.worker.concurrency == 3


def test_config_output_masks_secrets() -> None:
    from celeriac._model.redaction import redact

    shown = redact(
        {
            "broker": "redis://:hunter2@localhost:6379/0",
            "webhooks": {"secret": "s3", "url": "http://h"},
            "n": 1,
        }
    )
    assert shown == {
        "broker": "redis://:***@localhost:6379/0",
        "webhooks": {"secret": "***", "url": "http://h"},
        "n": 1,
    }


@frozen(kw_only=True)
class SecretSection:
    password: str = ""
    url: str = ""

    def __attrs_post_init__(self) -> None:
        if self.password and len(self.password) < 12:
            raise ValueError("password too short")


class SecretPlugin:
    @hookimpl
    def celeriac_add_config_sections(self) -> list[ConfigSection]:
        return [ConfigSection(name="vault", cls=SecretSection)]


def test_config_errors_never_print_secrets(tmp_path: Path) -> None:
    """Each error names the key and shows the value, but a secret only masked."""
    cases = {
        '[vault]\npassword = "hunter2"\n': "key 'vault' = {'password': '***'}: password too short",
        "[vault]\npassword = 42\n": "key 'vault.password' = '***': expected str",
        '[vault]\nurl = 1\nsmtp_password = "hunter2"\n': "unknown key 'vault.smtp_password' = '***'",
        'smtp_password = "hunter2"\n': "unknown key 'smtp_password' = '***'",
        'result_store = {url = "redis://:hunter2@h/0"}\n': "key 'result_store' = {'url': 'redis://:***@h/0'}",
    }
    for text, expected in cases.items():
        file = write(tmp_path / "c.toml", text)
        with pytest.raises(ConfigError) as info:
            Celeriac(config=file, env={}, plugins=[SecretPlugin()])
        message = str(info.value)
        assert expected in message, message
        assert "hunter2" not in message, message
