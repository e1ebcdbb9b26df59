"""Every setting of the installed Celery has a rule or a reason: none is dropped without a word."""

from __future__ import annotations

import pytest

from celeriac_migrate import _urls
from celeriac_migrate._reasons import REASONS
from celeriac_migrate._reasons import reason
from celeriac_migrate._rules import GROUPS
from celeriac_migrate._rules import RULES

celery_defaults = pytest.importorskip("celery.app.defaults")


def test_every_celery_setting_is_carried_over_or_explained() -> None:
    handled = set(RULES).union(*(settings for settings, _ in GROUPS))
    unexplained = [
        key
        for key in celery_defaults.DEFAULTS
        if key not in handled and reason(key) == "no celeriac equivalent"
    ]
    assert unexplained == []


def test_reasons_name_real_celery_settings() -> None:
    """A reason for a setting Celery does not have is a typo that hides the real one."""
    assert set(REASONS) - set(celery_defaults.DEFAULTS) == set()


@pytest.mark.parametrize(
    ("celery", "celeriac"),
    [
        ("pyamqp://guest@localhost//", "amqp://guest@localhost//"),
        ("amqp://a:p@h1//;amqp://a:p@h2//", "amqp://a:p@h1//"),
        ("redis://h:6379/0;redis://h2:6379/0", "redis://h:6379/0"),
        (
            "sentinel://:p@h:26379/0;sentinel://:p@h2:26379/0",
            "sentinel://:p@h:26379/0;sentinel://:p@h2:26379/0",
        ),
        ("sqla+sqlite:///var/q.db", "sqlite:///var/q.db"),
        ("memory://", "memory://"),
        ("sqs://", "sqs://"),
        ("kafka://localhost", None),
        ("filesystem://", None),
    ],
)
def test_broker_urls(celery: str, celeriac: str | None) -> None:
    assert _urls.broker(celery).url == celeriac


def test_masking_covers_every_url_of_a_list() -> None:
    assert (
        _urls.mask("sentinel://:a@h:1/0;sentinel://u:b@h2:1/0")
        == "sentinel://:**@h:1/0;sentinel://u:**@h2:1/0"
    )
    assert _urls.mask("redis://h:6379/0") == "redis://h:6379/0"
