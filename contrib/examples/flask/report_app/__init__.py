"""A Flask app that builds reports in the background with celeriac.

A user asks for a report (``POST /reports``); the app stores the job, queues
``build_report`` and answers at once with the job and its task id; a worker builds the
report and marks the job done; the user polls ``GET /reports/<id>`` and downloads the CSV.

Configuration: the defaults below, then ``FLASK_*`` environment variables
(``FLASK_SQLALCHEMY_DATABASE_URI``, ``FLASK_CELERIAC_BROKER``, ``FLASK_CELERIAC_RESULT_STORE``),
then the mapping given to ``create_app``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click
from flask import Flask

from report_app.extensions import celeriac
from report_app.extensions import db


def create_app(settings: Mapping[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.from_mapping(
        SQLALCHEMY_DATABASE_URI="sqlite:///reports.sqlite3",
        # The keys of celeriac.toml; here an embedded SQLite broker, no server needed.
        CELERIAC={"broker": "sqlite:///celeriac.sqlite3", "worker": {"concurrency": 2}},
    )
    app.config.from_prefixed_env()
    app.config.update(settings or {})
    db.init_app(app)
    celeriac.init_app(app)

    from report_app import tasks  # noqa: F401 - declares the tasks on the extension
    from report_app.views import reports

    app.register_blueprint(reports)

    @app.cli.command("init-db")
    def init_db() -> None:
        """Create the tables."""
        db.create_all()
        click.echo("tables created")

    return app
