"""A Celery app's settings through the rules, and the Celery defaults that differ from celeriac's."""

from __future__ import annotations

from typing import TYPE_CHECKING

from celeriac_migrate import _celery
from celeriac_migrate._context import Context
from celeriac_migrate._context import NoEquivalent
from celeriac_migrate._model import Migration
from celeriac_migrate._rules import GROUPS
from celeriac_migrate._rules import RULES
from celeriac_migrate._rules import reason

if TYPE_CHECKING:
    from celery import Celery


def migrate(app: Celery, *, with_secrets: bool = False) -> Migration:
    """The celeriac configuration equivalent to ``app``'s, with what has no equivalent.

    :param with_secrets: keep passwords in URLs and keys (masked otherwise).
    """
    context = Context(
        app=app,
        settings=_celery.settings(app),
        defaults=_celery.defaults(),
        migration=Migration(),
        with_secrets=with_secrets,
    )
    handled: set[str] = set()
    for settings, handler in GROUPS:
        handler(context)
        handled.update(settings)
    for key, value in context.settings.items():
        if key in handled:
            continue
        context.current = key
        rule = RULES.get(key)
        try:
            if rule is None:
                raise NoEquivalent(reason(key))
            rule(context, value)
        except NoEquivalent as exc:
            context.skip(key, str(exc))
    context.current = ""
    _differing_defaults(context)
    return context.migration


def _differing_defaults(context: Context) -> None:
    """Celery defaults that celeriac does not share, where they matter to a project moving over."""
    if not context.is_set("task_acks_late"):
        context.suggest(
            (),
            "acks_late",
            False,
            "Celery's default: acknowledge when a task starts; celeriac acknowledges after it "
            "finished (a killed worker loses nothing; a task may run twice)",
        )
    if context.value("task_always_eager") and not context.is_set("task_eager_propagates"):
        context.suggest((), "task_eager_propagates", False, "Celery's default; celeriac's is true")
    if context.broker_kind == "redis":
        context.put(
            ("redis", "layout"),
            "kombu",
            "Celery's: both share the queues while you move (then streams: docs/brokers/redis.md)",
        )
    if context.broker_kind == "amqp" and not context.is_set("task_queue_max_priority"):
        context.put(
            ("amqp", "max_priority"),
            0,
            "queues without x-max-priority, as Celery declares them by default "
            "(RabbitMQ refuses to redeclare a queue with other arguments)",
        )
