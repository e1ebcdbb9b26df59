"""Plugin discovery (stevedore) and dispatch (pluggy), behind typed functions.

With :mod:`.lifecycle`, the only module that calls ``pm.hook``: everything else asks
:class:`Plugins` for typed components. A plugin that fails to import stops start-up with its name and the
reason, unless ``plugins.strict = false``; then it is reported by ``celeriac plugins``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from importlib.metadata import entry_points
from typing import TYPE_CHECKING
from typing import Any
from typing import TypeVar

import pluggy
from attrs import frozen
from stevedore import NamedExtensionManager

from celeriac._contract import builtin
from celeriac._contract import hookspecs
from celeriac._contract import memory
from celeriac._contract.catalogue import install_hint
from celeriac._contract.lifecycle import Lifecycle
from celeriac._model.config import PluginsConfig
from celeriac._model.errors import PluginError

if TYPE_CHECKING:
    import click

    from celeriac._client.app import Celeriac
    from celeriac._contract.bootsteps import Bootstep
    from celeriac._contract.protocols import Compressor
    from celeriac._contract.protocols import EventSink
    from celeriac._contract.protocols import Serializer
    from celeriac._contract.specs import ControlCommand
    from celeriac._contract.specs import PoolSpec
    from celeriac._contract.specs import ResultStoreSpec
    from celeriac._contract.specs import ScheduleStoreSpec
    from celeriac._contract.specs import ScheduleType
    from celeriac._contract.specs import TransportSpec
    from celeriac._model.config import Config

log = logging.getLogger("celeriac.plugins")

ENTRY_POINT_GROUP = "celeriac.plugins"
AUTOLOAD_KILL_SWITCH = "CELERIAC_DISABLE_PLUGIN_AUTOLOAD"
_SPEC_HOOKS = {
    "celeriac_add_transports": "transport",
    "celeriac_add_result_stores": "result store",
    "celeriac_add_pools": "pool",
    "celeriac_add_serializers": "serializer",
    "celeriac_add_compressors": "compressor",
    "celeriac_add_schedule_types": "schedule type",
    "celeriac_add_schedule_stores": "schedule store",
    "celeriac_add_config_sections": "config section",
    "celeriac_add_cli_commands": "command",
    "celeriac_add_control_commands": "control command",
}
T = TypeVar("T")


@frozen
class PluginFailure:
    """A plugin that could not be loaded, and why."""

    name: str
    reason: str


@frozen
class PluginInfo:
    """What ``celeriac plugins`` shows for one registered plugin."""

    name: str
    module: str
    provides: tuple[str, ...]


def builtin_plugins() -> list[tuple[str, object]]:
    """The kernel's own plugins; always registered, like pytest's essential plugins."""
    return [("kernel", builtin), ("memory", memory)]


def installed_plugin_names() -> list[str]:
    """Entry-point names in the ``celeriac.plugins`` group, sorted."""
    return sorted({ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)})


def make_plugins(
    config: PluginsConfig | None = None,
    *,
    autoload: bool | None = None,
    extra: Iterable[object] = (),
    env: Mapping[str, str] | None = None,
) -> Plugins:
    """Build a plugin manager: kernel plugins, then installed ones, then ``extra`` modules.

    :param autoload: load entry points; defaults to true unless ``$CELERIAC_DISABLE_PLUGIN_AUTOLOAD``.
    :param extra: plugin objects registered directly (tests, or an app's own hooks).
    :param env: where to read the kill switch (default ``os.environ``).
    """
    config = config or PluginsConfig()
    extra = _plugin_objects(extra)
    if autoload is None:
        switch = (os.environ if env is None else env).get(AUTOLOAD_KILL_SWITCH, "")
        autoload = switch.lower() not in ("1", "true", "yes")
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for name, plugin in builtin_plugins():
        pm.register(plugin, name=name)
    failures: list[PluginFailure] = []
    if autoload:
        failures = _load_entry_points(pm, config)
    for plugin in extra:
        pm.register(plugin, name=_plugin_name(pm, plugin))
    pm.check_pending()
    return Plugins(pm, failures)


def _load_entry_points(pm: pluggy.PluginManager, config: PluginsConfig) -> list[PluginFailure]:
    installed = installed_plugin_names()
    named = set(config.enable or ()) | set(config.disable)
    unknown = sorted(named - set(installed))
    if unknown:
        raise PluginError(
            f"[plugins] names plugins that are not installed: {', '.join(unknown)} "
            f"(installed: {', '.join(installed) or 'none'})"
        )
    wanted = [
        name
        for name in installed
        if (config.enable is None or name in config.enable) and name not in config.disable
    ]
    failures: list[PluginFailure] = []

    def on_failure(_manager: Any, entrypoint: Any, exc: BaseException) -> None:
        failure = PluginFailure(entrypoint.name, f"{type(exc).__name__}: {exc}")
        if config.strict:
            raise PluginError(
                f"plugin {entrypoint.name!r} ({entrypoint.value}) failed to load: {failure.reason}; "
                f"fix or uninstall it, disable it with plugins.disable = [{entrypoint.name!r}], "
                "or set plugins.strict = false to start without it"
            ) from exc
        log.warning("plugin %r failed to load and is skipped: %s", entrypoint.name, failure.reason)
        failures.append(failure)

    manager = NamedExtensionManager(
        ENTRY_POINT_GROUP,
        names=wanted,
        invoke_on_load=False,
        on_load_failure_callback=on_failure,
        name_order=True,
    )
    for extension in manager.extensions:
        try:
            pm.register(extension.plugin, name=extension.name)
        except (ValueError, pluggy.PluginValidationError) as exc:
            on_failure(manager, extension.entry_point, exc)
    return failures


class Plugins:
    """Typed access to what the registered plugins provide.

    Collected components are cached on this instance (one per app), never globally.
    """

    def __init__(self, pm: pluggy.PluginManager, failures: Sequence[PluginFailure] = ()) -> None:
        self.pm = pm
        self.failures = tuple(failures)
        self._cache: dict[str, Any] = {}
        # Computed once: the hot path skips hooks that nobody implements.
        self.lifecycle = Lifecycle(pm)

    # --- components picked by URL scheme or name ----------------------------------

    def transport(self, url: str) -> TransportSpec:
        spec: TransportSpec = self._by_scheme("celeriac_add_transports", url, "transport", "broker")
        return spec

    def result_store(self, url: str) -> ResultStoreSpec:
        spec: ResultStoreSpec = self._by_scheme(
            "celeriac_add_result_stores", url, "result store", "result_store"
        )
        return spec

    def has_result_store(self, url: str) -> bool:
        return _scheme(url) in self._schemes("celeriac_add_result_stores")

    def schedule_store(self, url: str) -> ScheduleStoreSpec:
        spec: ScheduleStoreSpec = self._by_scheme(
            "celeriac_add_schedule_stores", url, "schedule store", "beat.schedule_store"
        )
        return spec

    def pool(self, name: str) -> PoolSpec:
        pools = self._named("celeriac_add_pools", lambda spec: [spec.name])
        spec: PoolSpec = _pick(pools, name, "pool", "worker.pool")
        return spec

    def serializers(self, config: Config | None = None) -> dict[str, Serializer]:
        found = self._named("celeriac_add_serializers", _name_of, config)
        by_type: dict[str, str] = {}
        for name, (serializer, plugin) in found.items():
            other = by_type.setdefault(serializer.content_type, f"{name} from {plugin}")
            if other != f"{name} from {plugin}":
                raise PluginError(
                    f"serializers {other} and {name} from {plugin} both claim the content type "
                    f"{serializer.content_type!r}; a message could not say which one decodes it"
                )
        return {name: item for name, (item, _) in found.items()}

    def compressors(self, config: Config | None = None) -> dict[str, Compressor]:
        found = self._named("celeriac_add_compressors", _name_of, config)
        return {name: item for name, (item, _) in found.items()}

    def schedule_types(self) -> dict[str, ScheduleType]:
        types = self._named("celeriac_add_schedule_types", lambda spec: [spec.key])
        return {key: spec for key, (spec, _) in types.items()}

    def config_sections(self) -> dict[str, type[Any]]:
        sections = self._named("celeriac_add_config_sections", _name_of)
        from celeriac._model.config import CORE_KEYS

        for name, (_, plugin) in sections.items():
            if name in CORE_KEYS:
                raise PluginError(f"plugin {plugin!r} declares the section [{name}], which is a core key")
        return {name: section.cls for name, (section, _) in sections.items()}

    def control_commands(self) -> list[ControlCommand]:
        commands = self._named("celeriac_add_control_commands", _name_of)
        return [command for command, _ in commands.values()]

    def cli_commands(self) -> list[click.Command]:
        commands = self._named("celeriac_add_cli_commands", lambda command: [command.name])
        return [command for command, _ in commands.values()]

    # --- hooks that take the configuration ----------------------------------------

    def bootsteps(self, config: Config, kernel: Sequence[Bootstep] = ()) -> list[Bootstep]:
        """The ``kernel`` steps (the worker's own) first, then plugin steps; a plugin step may
        replace a kernel step by name, but two plugins contributing the same name is an error
        naming both."""
        owners: dict[str, str] = {}
        contributed: list[Bootstep] = []
        for impl in self.pm.hook.celeriac_add_bootsteps.get_hookimpls():
            # Called one implementation at a time to know who provided what; honour pluggy's
            # opt-in arguments (an implementation may leave out ``config``).
            arguments = dict.fromkeys(impl.argnames, config)
            steps: Sequence[Bootstep] = impl.function(**arguments) or ()  # type: ignore[assignment]
            for step in steps:
                if step.name in owners:
                    raise PluginError(
                        f"plugins {owners[step.name]!r} and {impl.plugin_name!r} both provide "
                        f"the bootstep {step.name!r}; disable one in [plugins]"
                    )
                owners[step.name] = impl.plugin_name
                contributed.append(step)
        return [*kernel, *contributed]

    def event_sinks(self, config: Config, app: Celeriac | None = None) -> list[EventSink]:
        sinks: list[EventSink] = []
        for contributed in self.pm.hook.celeriac_add_event_sinks(config=config, app=app):
            sinks.extend(contributed)
        return sinks

    # --- introspection -------------------------------------------------------------

    def describe(self) -> list[PluginInfo]:
        """Each registered plugin and what it provides, for ``celeriac plugins``."""
        infos = []
        for name, plugin in sorted(self.pm.list_name_plugin(), key=lambda item: str(item[0])):
            provides: list[str] = []
            for impl_caller in self.pm.get_hookcallers(plugin) or ():
                label = _SPEC_HOOKS.get(impl_caller.name)
                if label is None:
                    provides.append(impl_caller.name.removeprefix("celeriac_"))
                    continue
                impl = next(i for i in impl_caller.get_hookimpls() if i.plugin is plugin)
                arguments = {"config": _default_config()} if "config" in impl.argnames else {}
                items: Sequence[Any] = impl.function(**arguments) or ()  # type: ignore[assignment]
                for item in items:
                    provides.append(f"{label} {_label_of(item)}")
            module = getattr(plugin, "__name__", type(plugin).__name__)
            infos.append(PluginInfo(str(name), module, tuple(sorted(provides))))
        return infos

    # --- helpers -------------------------------------------------------------------

    def _collect(self, hook_name: str, config: Config | None = None) -> list[tuple[Any, str]]:
        """Call a collecting hook per plugin, keeping who provided what.

        Implementations are called one at a time (not through pluggy's relay) for the
        attribution; ``config`` is passed to those that take it, pluggy's opt-in arguments.
        """
        if hook_name not in self._cache:
            collected: list[tuple[Any, str]] = []
            for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                arguments = {"config": config or _default_config()} if "config" in impl.argnames else {}
                for item in impl.function(**arguments) or ():
                    collected.append((item, impl.plugin_name))
            self._cache[hook_name] = collected
        result: list[tuple[Any, str]] = self._cache[hook_name]
        return result

    def _named(
        self, hook_name: str, names_of: Callable[[Any], Iterable[str]], config: Config | None = None
    ) -> dict[str, tuple[Any, str]]:
        found: dict[str, tuple[Any, str]] = {}
        for item, plugin in self._collect(hook_name, config):
            for name in names_of(item):
                if name in found and found[name][1] != plugin:
                    raise PluginError(
                        f"plugins {found[name][1]!r} and {plugin!r} both provide "
                        f"{_SPEC_HOOKS.get(hook_name, hook_name)} {name!r}; disable one in [plugins]"
                    )
                found[name] = (item, plugin)
        return found

    def _schemes(self, hook_name: str) -> dict[str, tuple[Any, str]]:
        return self._named(hook_name, lambda spec: spec.schemes)

    def _by_scheme(self, hook_name: str, url: str, kind: str, key: str) -> Any:
        return _pick(self._schemes(hook_name), _scheme(url), kind, key, url)


def _default_config() -> Config:
    from celeriac._model.config import Config

    return Config()


def _plugin_objects(extra: Iterable[object]) -> list[object]:
    """``extra`` checked: plugin objects (modules, instances), not settings. A mapping such as
    ``plugins={"enable": [...]}`` would otherwise register its keys, strings with no hooks,
    and the settings it meant would be ignored without a word."""
    objects: list[object] = [extra] if isinstance(extra, Mapping | str | bytes) else list(extra)
    for plugin in objects:
        if isinstance(plugin, Mapping | str | bytes):
            raise PluginError(
                "plugins= takes plugin objects (modules or instances with hook implementations), "
                f"not the {type(plugin).__name__} {plugin!r}; to choose which installed plugins "
                "load, set [plugins] enable or disable in the config file, or "
                "CELERIAC_PLUGINS__ENABLE / CELERIAC_PLUGINS__DISABLE"
            )
    return objects


def _plugin_name(pm: pluggy.PluginManager, plugin: object) -> str:
    """A readable name for a directly registered plugin: its module or class name."""
    base = getattr(plugin, "__name__", None) or type(plugin).__qualname__
    name, n = base, 1
    while pm.has_plugin(name):
        n += 1
        name = f"{base}#{n}"
    return name


def _scheme(url: str) -> str:
    scheme, sep, _ = url.partition("://")
    return scheme.lower() if sep else url.lower()


def _pick(found: dict[str, tuple[Any, str]], name: str, kind: str, key: str, shown: str | None = None) -> Any:
    if name in found:
        return found[name][0]
    available = ", ".join(f"{n} (from {p})" for n, (_, p) in sorted(found.items())) or "none installed"
    raise PluginError(
        f"no plugin provides the {kind} {name!r} (config key {key!r} = {shown or name!r}); "
        f"available: {available}. {install_hint(kind, name, {n: p for n, (_, p) in found.items()})}"
    )


def _name_of(item: Any) -> list[str]:
    return [item.name]


def _label_of(item: Any) -> str:
    for attr in ("schemes", "name", "key"):
        value = getattr(item, attr, None)
        if value:
            return "/".join(value) if isinstance(value, tuple) else str(value)
    return type(item).__name__
