"""A project on a real broker with a real worker and ``celeriac dashboard``, and a real browser.

``cluster`` starts, in a directory of the test's own, a celeriac worker (events on) and the
dashboard as subprocesses on free loopback ports, on SQLite or on Redis (under a key prefix
of the test's own); every process is killed by PID afterwards. ``browser`` is Debian's
chromium driven by Playwright (never Playwright's own download): absent, the tests skip
with the reason, and fail under CI=true.
"""

from __future__ import annotations

import json
import os
import shutil
import textwrap
import urllib.error
import urllib.request
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from attrs import frozen

from celeriac.testing import ProcessGroup
from celeriac.testing import WorkerProcess
from celeriac.testing import celeriac_command
from celeriac.testing import free_port
from celeriac.testing import service_unreachable
from celeriac.testing import subprocess_env
from celeriac.testing import wait_for

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Screenshots every browser test keeps (ignored by git).
ARTIFACTS = Path(__file__).parent / "artifacts"
#: Set to 1 to refresh the screenshots docs/dashboard.md shows.
DOCS_IMAGES = Path(__file__).parents[3] / "docs" / "images"

TASKS = """
import time

from celeriac import Celeriac

app = Celeriac("proj")


@app.task
def add(x, y):
    return x + y


@app.task
def fail():
    raise ValueError("broken on purpose")


@app.task
def sleepy(seconds):
    time.sleep(seconds)
    return seconds


@app.task(bind=True)
def abortable(call, limit=30.0):
    # Celery's AbortableTask way: poll its own state until it reads ABORTED.
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if call.app.AsyncResult(call.request.id).state == "ABORTED":
            return "aborted"
        time.sleep(0.05)
    return "not aborted"
"""


@frozen
class Reply:
    """One HTTP answer: status, headers (lower-case names) and body text."""

    status: int
    headers: dict[str, str]
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


class Cluster:
    """A project directory with one worker and the dashboard, and helpers to read them.

    :param dashboard_toml: more ``[dashboard]`` settings (credentials, ``read_only`` ...).
    :param url_prefix: the dashboard's ``url_prefix``; :attr:`base` includes it.
    :param credentials: headers sent with every request (``Authorization``).
    """

    def __init__(
        self,
        directory: Path,
        broker: str,
        extra_toml: str = "",
        *,
        dashboard_toml: str = "",
        url_prefix: str = "",
        credentials: dict[str, str] | None = None,
    ) -> None:
        self.directory = directory
        self.port = free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        self.base = self.origin + url_prefix
        self.credentials = dict(credentials or {})
        (directory / "celeriac.toml").write_text(
            f'broker = "{broker}"\n{extra_toml}'
            '[worker]\npool = "prefork"\npoll_timeout = 0.2\nconcurrency = 1\n'
            "[events]\nbatch_interval = 0.1\ntask_send_sent_event = true\n"
            f'[dashboard]\nport = {self.port}\nhistory = "{directory / "history.sqlite3"}"\n'
            f'url_prefix = "{url_prefix}"\n'
            "sample_interval = 1.0\nlive_interval = 0.1\ninspect_timeout = 2.0\n"
            f"{dashboard_toml}"
        )
        (directory / "proj.py").write_text(textwrap.dedent(TASKS))
        self.processes = ProcessGroup(directory, subprocess_env(directory))
        self.worker: WorkerProcess | None = None
        self.dashboard: WorkerProcess | None = None

    def start_worker(self, hostname: str) -> WorkerProcess:
        self.worker = self.processes.start(
            celeriac_command("proj", "worker", "-E", "-n", hostname), log="worker", timeout=30
        )
        return self.worker

    def start_dashboard(self, *args: str, with_app: bool = False) -> WorkerProcess:
        """``celeriac dashboard ARGS``: from the configuration alone (as on a Celery cluster),
        or with ``-A proj`` (``with_app``: the apply endpoints need the app's tasks)."""
        command = celeriac_command("proj", "dashboard", *args)
        if not with_app:
            command = [c for c in command if c not in ("-A", "proj")]
        self.dashboard = self.processes.start(command, ready="dashboard on http", log="dashboard", timeout=30)
        wait_for(self._up, 20, f"dashboard on port {self.port}\n{self.dashboard.output()}")
        return self.dashboard

    def _up(self) -> bool:
        try:
            return self.request("GET", "/healthcheck").text == "OK"
        except (urllib.error.URLError, ConnectionError):
            return False

    def request(
        self, method: str, path: str, data: bytes | None = None, headers: dict[str, str] | None = None
    ) -> Reply:
        """``method`` ``path`` (under :attr:`base`) with the credentials, whatever the status."""
        sent = {**self.credentials, **(headers or {})}
        body = data if data is not None or method == "GET" else b""
        request = urllib.request.Request(self.base + path, data=body, method=method, headers=sent)
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                return Reply(response.status, _lower(response.headers), response.read().decode())
        except urllib.error.HTTPError as exc:
            return Reply(exc.code, _lower(exc.headers), exc.read().decode())

    def get_text(self, path: str) -> str:
        """The body of a GET that must succeed."""
        reply = self.request("GET", path)
        if reply.status != 200:
            raise urllib.error.HTTPError(self.base + path, reply.status, reply.text, None, None)  # type: ignore[arg-type]
        return reply.text

    def get(self, path: str) -> Any:
        return json.loads(self.get_text(path))

    def post(self, path: str, data: bytes = b"", headers: dict[str, str] | None = None) -> tuple[int, str]:
        reply = self.request("POST", path, data, headers)
        return reply.status, reply.text

    def post_json(self, path: str, body: Any) -> Reply:
        return self.request("POST", path, json.dumps(body).encode(), {"Content-Type": "application/json"})


def _lower(headers: Any) -> dict[str, str]:
    return {key.lower(): value for key, value in headers.items()}


@pytest.fixture(params=["sqlite", "redis"])
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cluster]:
    if request.param == "sqlite":
        made = Cluster(tmp_path, f"sqlite:///{tmp_path / 'broker.sqlite3'}")
    else:
        from celeriac_redis import testing

        url = testing.require_redis(testing.server_url())
        prefix = request.getfixturevalue("redis_prefix")
        made = Cluster(tmp_path, url, f'[redis]\nkey_prefix = "{prefix}"\nresult_key_prefix = "{prefix}"\n')
    made.kind = request.param  # type: ignore[attr-defined]
    try:
        yield made
    finally:
        made.processes.kill()


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    from celeriac_redis import testing

    with testing.private_prefix(testing.server_url()) as prefix:
        yield prefix


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Module-scoped: Playwright's sync API keeps an asyncio loop running on this thread while
    it is open, and code that refuses to run inside an event loop (Django's ORM) would fail
    in every later test of the process."""
    if not shutil.which(CHROMIUM):
        service_unreachable(f"no chromium at {CHROMIUM} (make chromium installs Debian's)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(10_000)
    made = context.new_page()
    made.on("dialog", lambda dialog: dialog.accept())
    try:
        yield made
    finally:
        context.close()


def screenshot(page: Any, name: str) -> Path:
    """Keep a screenshot as a test artifact (and for the docs, when asked to)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    if os.environ.get("CELERIAC_UPDATE_DOCS_SCREENSHOTS") == "1" and name.startswith("sqlite-"):
        DOCS_IMAGES.mkdir(exist_ok=True)
        shutil.copy(path, DOCS_IMAGES / f"dashboard-{name.removeprefix('sqlite-')}.png")
    return path


@pytest.fixture
def shoot() -> Callable[[Any, str], Path]:
    """``shoot(page, name)``: :func:`screenshot`."""
    return screenshot


@pytest.fixture
def poll() -> Callable[[Callable[[], Any], float, str], Any]:
    """``poll(predicate, timeout, what)``: the predicate's first truthy value, or a failure."""
    return wait_for
