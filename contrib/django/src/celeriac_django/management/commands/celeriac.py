"""``python manage.py celeriac worker|beat|relay|...``: celeriac's command line, Django set up.

Everything after ``celeriac`` goes to celeriac's own command line unchanged, with the project's
app (``-A celeriac_django.app:app``, or ``settings.CELERIAC_APP``) unless ``-A`` is given.
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run celeriac's command line (worker, beat, relay, inspect ...) with this project's app."

    def run_from_argv(self, argv: list[str]) -> None:
        # Django's own option parser would refuse celeriac's options: hand them all over.
        from celeriac.plugin import run_cli
        from celeriac_django._app import get_app

        rest = argv[2:]
        app = get_app()
        given = any(arg in ("-A", "--app") or arg.startswith("--app=") for arg in rest)
        sys.argv = [
            "celeriac",
            *([] if given else ["-A", app.import_path or "celeriac_django.app:app"]),
            *rest,
        ]
        run_cli(prog_name=f"{argv[0]} celeriac")

    def handle(self, *args: Any, **options: Any) -> None:  # pragma: no cover - run_from_argv replaces it
        self.run_from_argv(["manage.py", "celeriac", *args])
