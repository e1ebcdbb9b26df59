"""Settings as frozen attrs classes, read once from TOML, environment and flags.

Precedence, lowest first: defaults, the TOML file (``celeriac.toml`` or ``[tool.celeriac]``
in ``pyproject.toml``), ``CELERIAC_*`` environment variables (``__`` separates nesting, so
``CELERIAC_WORKER__CONCURRENCY=8``), then keywords or CLI flags. Every value remembers
where it came from, so ``celeriac config`` can show it and errors can name the file.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from typing import TypeVar

from attrs import evolve
from attrs import field
from attrs import fields
from attrs import frozen

from celeriac._model._structure import shown
from celeriac._model._structure import structure_or_explain
from celeriac._model.errors import ConfigError
from celeriac._model.routing import TaskRoute

T = TypeVar("T")

ENV_PREFIX = "CELERIAC_"
#: Environment variables that steer loading itself rather than set a key.
#: Settings of ``celeriac worker`` flags, as JSON ``{"dotted.key": [value, "--flag"]}``: the
#: top layer below keyword overrides, its source shown as the flag.
FLAGS_ENV = "CELERIAC_FLAGS"
RESERVED_ENV = frozenset({"CELERIAC_CONFIG", "CELERIAC_DISABLE_PLUGIN_AUTOLOAD", "CELERIAC_APP", FLAGS_ENV})
DEFAULT_BROKER = "sqlite:///celeriac.sqlite3"


@frozen(kw_only=True)
class ConfigSection:
    """A top-level TOML table a plugin reads, structured into ``cls`` (an attrs class)."""

    name: str
    cls: type[Any]
    description: str = ""


@frozen(kw_only=True)
class WorkerConfig:
    """``[worker]``: how a worker consumes and executes."""

    pool: str = "threads"
    #: Requests run at once; 0 means the number of CPUs.
    concurrency: int = 0
    #: Messages reserved beyond those running; 0 means as many as ``concurrency``.
    prefetch: int = 0
    #: Queues to consume; empty means the default queue.
    queues: tuple[str, ...] = ()
    hostname: str = ""
    loglevel: str = "INFO"
    #: A message delivered more often than this (a task that kills its worker) is dead-lettered.
    max_deliveries: int = 10
    #: Seconds a warm shutdown waits for running tasks; none waits for as long as they run.
    shutdown_timeout: float | None = None
    #: Seconds one fetch waits for a message before the consumer checks for shutdown.
    poll_timeout: float = 1.0
    #: Send task and worker events to the event sinks plugins provide (``-E``); off by
    #: default, as in Celery, so a worker that nobody watches builds no events at all.
    send_events: bool = False
    #: A file keeping worker state (revoked task ids) across restarts; none keeps it in memory.
    statedb: str | None = None
    #: Run beat, the periodic-task scheduler, on a thread of the worker (``-B``).
    beat: bool = False
    #: Send ``worker-heartbeat`` events (with events on); ``--without-heartbeat`` turns them off.
    heartbeat: bool = True
    #: Development: restart the pool when a source file of the app changes (``--autoreload``).
    autoreload: bool = False
    #: A worker that cannot reach its broker at start tries again after this many seconds,
    #: doubling up to ``broker_retry_max`` ...
    broker_retry_base: float = 1.0
    broker_retry_max: float = 30.0
    #: ... this many times; none (the default) tries for as long as it runs.
    broker_retry_attempts: int | None = None


@frozen(kw_only=True)
class PluginsConfig:
    """``[plugins]``: which installed plugins load and what happens when one is broken."""

    #: When set, only these entry-point names load (the kernel's own plugins always load).
    enable: tuple[str, ...] | None = None
    disable: tuple[str, ...] = ()
    #: A plugin that fails to import stops start-up; false logs it and goes on without it.
    strict: bool = True


@frozen(kw_only=True)
class TaskConfig:
    """``[tasks."name"]``: options for one task, over the defaults and under ``apply_async``."""

    queue: str | None = None
    #: An exchange and routing key to publish to, on brokers that have exchanges (RabbitMQ).
    exchange: str | None = None
    routing_key: str | None = None
    priority: int | None = None
    ignore_result: bool | None = None
    acks_late: bool | None = None
    max_retries: int | None = None
    default_retry_delay: float | None = None
    time_limit: float | None = None
    soft_time_limit: float | None = None
    rate_limit: str | None = None
    global_rate_limit: str | None = None
    serializer: str | None = None
    expires: float | None = None
    retry_backoff: float | None = None
    retry_backoff_max: float | None = None
    retry_jitter: bool | None = None
    track_started: bool | None = None
    acks_on_failure_or_timeout: bool | None = None
    reject_on_worker_lost: bool | None = None


@frozen(kw_only=True)
class Config:
    """The whole effective configuration; built once, never changed."""

    imports: tuple[str, ...] = ()
    broker: str = DEFAULT_BROKER
    #: Where results go; unset means the broker's URL when a store serves its scheme,
    #: and an empty string turns results off.
    result_store: str | None = None
    serializer: str = "json"
    result_serializer: str = "json"
    #: Content types (or serializer names) a worker and a result reader accept.
    accept: tuple[str, ...] = ("json",)
    #: Content types a result reader trusts; unset means the same as ``accept``.
    result_accept: tuple[str, ...] | None = None
    compression: str | None = None
    default_queue: str = "celery"
    default_priority: int | None = None
    #: Seconds a result is kept.
    result_expires: float = 86400.0
    acks_late: bool = True
    task_always_eager: bool = False
    task_eager_propagates: bool = True
    #: Seconds a delivered message stays invisible to other workers before it is redelivered;
    #: a live worker renews the lease of tasks it is running, so long tasks are not duplicated.
    visibility_timeout: float = 300.0
    #: Seconds a publish (``delay()``, ``send_task``) keeps trying to reach a broker that is
    #: down before it raises :class:`~celeriac.PublishTimeoutError`; the message is then not
    #: sent (RabbitMQ: see docs/brokers/rabbitmq.md for a message already written).
    publish_timeout: float = 10.0
    worker: WorkerConfig = field(factory=WorkerConfig)
    plugins: PluginsConfig = field(factory=PluginsConfig)
    tasks: Mapping[str, TaskConfig] = field(factory=dict)
    #: Options for every task (Celery's ``task_time_limit``, ``task_track_started`` ...), under
    #: what code declares and ``[tasks."name"]``; where a task goes is not among them.
    task_defaults: TaskConfig = field(factory=TaskConfig)
    #: Glob pattern of task names -> queue, first match wins (``"proj.reports.*" = "slow"``),
    #: or a table (``{exchange = "media", routing_key = "media.video"}``); used for tasks
    #: whose code and ``[tasks."name"]`` name neither a queue nor an exchange.
    task_routes: Mapping[str, str | TaskRoute] = field(factory=dict)
    #: Sections contributed by plugins, keyed by section name.
    sections: Mapping[str, Any] = field(factory=dict)
    #: Dotted key -> where its value came from ("default" when absent).
    provenance: Mapping[str, str] = field(factory=dict, eq=False, repr=False)

    def section(self, name: str, cls: type[T]) -> T:
        """Return a plugin's section, or its defaults when the section was not given."""
        value = self.sections.get(name)
        if value is None:
            return cls()
        if not isinstance(value, cls):
            raise ConfigError(f"config section [{name}] is a {type(value).__name__}, not {cls.__name__}")
        return value

    def task(self, name: str) -> TaskConfig:
        return self.tasks.get(name) or _NO_TASK_CONFIG

    def source_of(self, key: str) -> str:
        return self.provenance.get(key, "default")


_NO_TASK_CONFIG = TaskConfig()
CORE_KEYS = frozenset(a.name for a in fields(Config))
_NOT_FROM_FILES = frozenset({"sections", "provenance"})


@frozen(kw_only=True)
class RawConfig:
    """The merged layers before structuring, with the source of each dotted key."""

    data: Mapping[str, Any]
    provenance: Mapping[str, str]
    file: Path | None = None


def find_config_file(path: str | os.PathLike[str] | bool | None, env: Mapping[str, str]) -> Path | None:
    """The file to read: the given path, ``$CELERIAC_CONFIG``, ./celeriac.toml, or ./pyproject.toml.

    ``path=False`` reads no file at all (tests, and apps configured wholly in code).
    """
    if path is False:
        return None
    explicit = path if path is not None else env.get("CELERIAC_CONFIG")
    if explicit:
        candidate = Path(str(explicit))
        if not candidate.is_file():
            raise ConfigError(f"config file {candidate} does not exist")
        return candidate
    for name in ("celeriac.toml", "pyproject.toml"):
        candidate = Path(name)
        if candidate.is_file() and (name == "celeriac.toml" or _has_tool_section(candidate)):
            return candidate
    return None


def read_file(path: Path) -> dict[str, Any]:
    """Parse a TOML file; for pyproject.toml take the ``[tool.celeriac]`` table."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc}") from exc
    if path.name == "pyproject.toml":
        return dict(data.get("tool", {}).get("celeriac", {}))
    return data


def read_env(env: Mapping[str, str]) -> dict[str, Any]:
    """Turn ``CELERIAC_A__B=value`` into ``{"a": {"b": value}}``; values are TOML literals or strings."""
    result: dict[str, Any] = {}
    for name, text in env.items():
        if not name.startswith(ENV_PREFIX) or name in RESERVED_ENV:
            continue
        path = name[len(ENV_PREFIX) :].lower().split("__")
        _set_path(result, path, toml_literal(text))
    return result


def read_layers(
    path: str | os.PathLike[str] | bool | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    overrides_source: str = "keyword",
) -> RawConfig:
    """Merge file, environment and overrides, recording where each value came from."""
    env = os.environ if env is None else env
    data: dict[str, Any] = {}
    provenance: dict[str, str] = {}
    file = find_config_file(path, env)
    if file is not None:
        _merge(data, read_file(file), provenance, str(file))
    env_layer = read_env(env)
    _merge(data, env_layer, provenance, "env")
    for key in _dotted_keys(env_layer):
        provenance[key] = f"env {ENV_PREFIX}{key.upper().replace('.', '__')}"
    flags = env.get(FLAGS_ENV)
    if flags:
        for key, (value, flag) in json.loads(flags).items():
            nested_flag: dict[str, Any] = {}
            _set_path(nested_flag, key.split("."), value)
            _merge(data, nested_flag, provenance, f"flag {flag}")
    if overrides:
        nested: dict[str, Any] = {}
        for key, value in overrides.items():
            if value is not None:
                _set_path(nested, key.split("."), value)
        _merge(data, nested, provenance, overrides_source)
    return RawConfig(data=data, provenance=provenance, file=file)


def plugins_config(raw: RawConfig) -> PluginsConfig:
    """Structure only ``[plugins]``: it decides which plugins load, before their sections are known."""
    return structure_or_explain(raw.data.get("plugins", {}), PluginsConfig, "plugins", raw.provenance)


def build_config(raw: RawConfig, sections: Mapping[str, type[Any]]) -> Config:
    """Structure the merged layers; unknown keys and wrong types raise :class:`ConfigError`."""
    core: dict[str, Any] = {}
    plugin_sections: dict[str, Any] = {}
    for key, value in raw.data.items():
        if key in CORE_KEYS and key not in _NOT_FROM_FILES:
            core[key] = value
        elif key in sections:
            if not isinstance(value, Mapping):
                raise ConfigError(
                    f"{raw.provenance.get(key, 'config')}: [{key}] must be a table, got {value!r}"
                )
            plugin_sections[key] = structure_or_explain(value, sections[key], key, raw.provenance)
        else:
            known = sorted((CORE_KEYS - _NOT_FROM_FILES) | set(sections))
            raise ConfigError(_unknown_key(key, value, raw.provenance.get(key, "config"), known))
    config = structure_or_explain(core, Config, "", raw.provenance)
    return evolve(config, sections=plugin_sections, provenance=dict(raw.provenance))


def _unknown_key(key: str, value: Any, source: str, known: list[str]) -> str:
    import difflib

    hint = difflib.get_close_matches(key, known, n=1)
    suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
    return (
        f"{source}: unknown key {key!r} = {shown(key, value)!r}{suggestion} "
        f"(known keys: {', '.join(known)}; a plugin section is unknown when its plugin is not loaded)"
    )


def _has_tool_section(path: Path) -> bool:
    try:
        return "celeriac" in tomllib.loads(path.read_text(encoding="utf-8")).get("tool", {})
    except (OSError, tomllib.TOMLDecodeError):
        return False


def toml_literal(text: str) -> Any:
    """``text`` read as a TOML value (``30``, ``true``, ``[1, 2]``, ``"x"``), else as the string itself."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _set_path(target: dict[str, Any], path: list[str], value: Any) -> None:
    for part in path[:-1]:
        target = target.setdefault(part, {})
    target[path[-1]] = value


def _merge(
    target: dict[str, Any],
    layer: Mapping[str, Any],
    provenance: dict[str, str],
    source: str,
    prefix: str = "",
) -> None:
    for key, value in layer.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _merge(target[key], value, provenance, source, f"{dotted}.")
            continue
        target[key] = dict(value) if isinstance(value, Mapping) else value
        for sub in _dotted_keys({key: value}, prefix):
            provenance[sub] = source
        provenance[dotted] = source


def _dotted_keys(data: Mapping[str, Any], prefix: str = "") -> list[str]:
    keys: list[str] = []
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            keys.extend(_dotted_keys(value, f"{dotted}."))
        else:
            keys.append(dotted)
    return keys
