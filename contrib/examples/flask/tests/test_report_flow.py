"""The report flow end to end: a real worker process, the example's own database (a fresh
PostgreSQL database, or SQLite) and a broker of the test's own (an SQLite file).

Two ways of running it, as users do: the worker started with ``celeriac -A
report_app.worker worker`` (threads) while the test talks to the app through Flask's test
client, and the worker started with ``flask --app report_app celeriac worker`` (prefork:
tasks run in child processes) while the test talks HTTP to ``flask run``.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.request
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from celeriac.testing import free_port
from celeriac.testing import process_group
from celeriac.testing import subprocess_env

EXAMPLE = Path(__file__).resolve().parent.parent
SALES = [("north", 1250), ("north", 399), ("south", 10000), ("east", 1), ("south", 5)]

pytestmark = [pytest.mark.slow, pytest.mark.integration]


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'reports.sqlite3'}"
        return
    from celeriac_sqlalchemy.testing import postgres_url
    from celeriac_sqlalchemy.testing import private_database

    with private_database(postgres_url(), name="celeriac_flask_example") as url:
        yield url


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> dict[str, str]:
    """The example's configuration, as the FLASK_* variables every process of the test reads."""
    return {
        "FLASK_SQLALCHEMY_DATABASE_URI": database_url,
        "FLASK_CELERIAC_BROKER": f"sqlite:///{tmp_path / 'broker.sqlite3'}",
    }


@pytest.fixture
def web(monkeypatch: pytest.MonkeyPatch, settings: dict[str, str]) -> Iterator[Any]:
    """The example's Flask app in this process, tables created (``flask init-db``) and sales stored."""
    monkeypatch.syspath_prepend(str(EXAMPLE))
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    from report_app import create_app
    from report_app.extensions import db
    from report_app.models import Sale

    app = create_app()
    result = app.test_cli_runner().invoke(args=["init-db"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        db.session.add_all(Sale(region=region, amount_cents=cents) for region, cents in SALES)
        db.session.commit()
    yield app
    app.extensions["celeriac"].close()
    with app.app_context():
        db.engine.dispose()


def expected_csv(region: str | None = None) -> str:
    totals: dict[str, list[int]] = {}
    for name, cents in SALES:
        if region in (None, name):
            totals.setdefault(name, []).append(cents)
    lines = ["region,sales,total"]
    lines += [f"{name},{len(c)},{sum(c) / 100:.2f}" for name, c in sorted(totals.items())]
    return "\n".join(lines) + "\n"


def wait_for(check: Callable[[], dict[str, Any]], timeout: float = 30.0) -> dict[str, Any]:
    """Poll the job's status page until it is done or failed, as the user does; bounded."""
    deadline = time.monotonic() + timeout
    while True:
        status = check()
        if status["status"] in ("done", "failed"):
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"report still {status['status']} after {timeout} s: {status}")
        time.sleep(0.1)


def test_reports_with_celeriac_worker_and_test_client(
    web: Any, tmp_path: Path, settings: dict[str, str]
) -> None:
    env = subprocess_env(EXAMPLE, **settings)
    with process_group(tmp_path, env) as group:
        worker = group.start(
            [
                sys.executable,
                "-m",
                "celeriac",
                "-A",
                "report_app.worker",
                "worker",
                "-P",
                "threads",
                "-c",
                "2",
            ]
        )
        client = web.test_client()
        asked = [client.post("/reports", json={"region": region}) for region in (None, "north", "south")]
        for response in asked:
            assert response.status_code == 202, response.data
            assert response.json["status"] == "queued"
            assert response.json["task_id"]
        for response, region in zip(asked, (None, "north", "south"), strict=True):
            status = wait_for(lambda url=response.json["url"]: client.get(url).json)
            assert status["status"] == "done", (status, worker.output())
            # Built by the worker process, in its app context (db.session works only there).
            assert status["built_by"].endswith(f":{worker.pid}")
            download = client.get(status["download"])
            assert download.status_code == 200
            assert download.mimetype == "text/csv"
            assert download.data.decode() == expected_csv(region)
        assert "report_app.tasks.build_report" in worker.output()
        # A report that cannot be built: the job says why, and there is nothing to download.
        failing = client.post("/reports", json={"region": "west"})
        status = wait_for(lambda: client.get(failing.json["url"]).json)
        assert status["status"] == "failed", (status, worker.output())
        assert status["error"] == "no sales to report in region 'west'"
        assert client.get(f"{failing.json['url']}/download").status_code == 409
        with web.app_context():
            result = web.extensions["celeriac"].AsyncResult(asked[0].json["task_id"])
            assert result.get(timeout=5) == 3  # north, south, east


def _http(method: str, url: str, body: dict[str, Any] | None = None) -> tuple[int, bytes, str]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read(), response.headers.get_content_type()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers.get_content_type()


def test_reports_with_flask_celeriac_prefork_worker_over_http(
    web: Any, tmp_path: Path, settings: dict[str, str]
) -> None:
    port = free_port()
    env = subprocess_env(EXAMPLE, **settings)
    flask = [sys.executable, "-m", "flask", "--app", "report_app"]
    with process_group(tmp_path, env) as group:
        worker = group.start([*flask, "celeriac", "worker", "-P", "prefork", "-c", "2"], timeout=60)
        group.start([*flask, "run", "--port", str(port), "--no-reload"], ready="Running on", log="http")
        base = f"http://127.0.0.1:{port}"
        code, body, _ = _http("POST", f"{base}/reports", {"region": "south"})
        assert code == 202, body
        job = json.loads(body)
        early, _, _ = _http("GET", f"{base}{job['url']}/download")
        assert early in (200, 409)  # 409 while it is being built: the answer came at once
        status = wait_for(lambda: json.loads(_http("GET", f"{base}{job['url']}")[1]))
        assert status["status"] == "done", (status, worker.output())
        host_pid = int(status["built_by"].rsplit(":", 1)[1])
        # Built in a prefork child, not in the worker's main process nor in this one.
        assert host_pid not in (worker.pid, os.getpid())
        code, body, content_type = _http("GET", f"{base}{status['download']}")
        assert (code, content_type) == (200, "text/csv")
        assert body.decode() == expected_csv("south")
