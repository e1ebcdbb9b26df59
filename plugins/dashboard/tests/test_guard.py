"""Safe by default, against a running dashboard and a real worker (SQLite), without a browser.

Credentials (basic auth, bearer tokens) on every path but the health check, secrets never
shown, every action refused from another site and in read-only mode (and nothing done), the
whole dashboard under a URL prefix, and a non-loopback address refused without credentials.
Every action is every non-GET operation the served OpenAPI document lists; test_openapi.py
checks that list against the app's routes.
"""

from __future__ import annotations

import base64
import html.parser
import re
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from celeriac import Celeriac
from celeriac.testing import celeriac_command
from celeriac.testing import subprocess_env
from celeriac.testing import wait_for

from .conftest import Cluster
from .conftest import Reply
from .conftest import free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

PASSWORD = "pw-SEKRIT-1"
TOKEN = "tok-SEKRIT-2"
BASIC = {"Authorization": "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()}
BEARER = {"Authorization": f"Bearer {TOKEN}"}
HOST = "w1@guard"
#: Pages besides the API, each with its path parameters filled in.
PAGES = (
    "/", "/workers", f"/worker/{HOST}", "/tasks", "/task/some-id", "/queues", "/broker",
    "/dead-letters", "/schedule", "/graphs", "/live", "/openapi.json", "/static/app.js",
)  # fmt: skip
EVIL = "http://evil.example"


def _basic(user_password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(user_password.encode()).decode()}


#: A task name nothing sends, and a schedule entry nothing stores, but a refused request would.
NEVER_SENT = "proj.never-sent"
NEVER_STORED = "never-stored"


def operations(cluster: Cluster, task_id: str = "some-id") -> list[tuple[str, str]]:
    """Every (method, path) of the served OpenAPI document, path parameters filled in: the
    worker for worker paths, :data:`NEVER_SENT` for task names, :data:`NEVER_STORED` for
    schedule entries."""
    document = cluster.get("/openapi.json")
    found = []
    for template, methods in document["paths"].items():
        name = HOST if template.startswith("/api/worker/") else NEVER_SENT
        if template.startswith("/api/dashboard/schedule/"):
            name = NEVER_STORED
        values = {"name": name, "task_id": task_id, "letter_id": "no-such-letter"}
        path = re.sub(r"\{(\w+)\}", lambda m, v=values: v[m.group(1)], template)  # type: ignore[misc]
        found.extend((method.upper(), path) for method in methods)
    return found


def actions(cluster: Cluster, task_id: str = "some-id") -> list[tuple[str, str]]:
    return [(method, path) for method, path in operations(cluster, task_id) if method != "GET"]


def csrf_token(cluster: Cluster) -> str:
    match = re.search(r'<meta name="csrf-token" content="([^"]+)">', cluster.get_text("/workers"))
    assert match, "the page carries no CSRF token"
    return match.group(1)


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[Cluster]:
    """A worker and the dashboard under /flower with a password and a token."""
    cluster = Cluster(
        tmp_path,
        f"sqlite:///{tmp_path / 'broker.sqlite3'}",
        dashboard_toml=f'passwords = ["admin:{PASSWORD}"]\ntokens = ["{TOKEN}"]\n',
        url_prefix="/flower",
        credentials=BASIC,
    )
    try:
        cluster.start_worker(HOST)
        cluster.start_dashboard()
        wait_for(lambda: cluster.get("/api/workers?status=true").get(HOST), 20, "worker online")
        yield cluster
    finally:
        cluster.processes.kill()


@pytest.fixture
def client(guarded: Cluster) -> Iterator[Celeriac]:
    app = Celeriac("client", config=str(guarded.directory / "celeriac.toml"), env={})
    yield app
    app.close()


def _anonymous(cluster: Cluster, method: str, path: str, headers: dict[str, str] | None = None) -> Reply:
    saved, cluster.credentials = cluster.credentials, {}
    try:
        return cluster.request(method, path, headers=headers)
    finally:
        cluster.credentials = saved


def test_credentials_are_required_everywhere_and_secrets_never_shown(guarded: Cluster) -> None:
    every = [*(("GET", page) for page in PAGES), *operations(guarded)]
    refused: list[Reply] = []
    for method, path in every:
        if path == "/healthcheck":
            assert _anonymous(guarded, method, path).text == "OK"  # a load balancer's probe
            continue
        for wrong in (
            {},
            _basic(f"admin:{PASSWORD}-wrong"),
            _basic(f"admin:{TOKEN}"),
            {"Authorization": f"Bearer {TOKEN}-wrong"},
            {"Authorization": f"Bearer {PASSWORD}"},
            {"Authorization": "Basic !!not-base64"},
        ):
            reply = _anonymous(guarded, method, path, wrong)
            assert reply.status == 401, (method, path, wrong, reply)
            assert reply.headers["www-authenticate"].startswith("Basic ")
            refused.append(reply)
    assert all("SEKRIT" not in reply.text + str(reply.headers) for reply in refused)

    assert _anonymous(guarded, "GET", "/api/workers", BASIC).status == 200
    assert _anonymous(guarded, "GET", "/api/workers", BEARER).status == 200

    # With credentials, nothing shows them: pages, API, the workers' configuration.
    inspected = guarded.get(f"/api/workers?refresh=1&workername={HOST}")[HOST]
    assert inspected["conf"]["dashboard"]["passwords"] == "***"
    assert inspected["conf"]["dashboard"]["tokens"] == "***"
    shown = [
        guarded.get_text(path)
        for path in (
            "/workers", f"/worker/{HOST}", "/api/workers?refresh=1", "/api/dashboard/workers", "/tasks",
            "/queues", "/schedule", "/api/dashboard/schedule", "/openapi.json", "/metrics",
        )
    ]  # fmt: skip
    assert all("SEKRIT" not in text for text in shown)
    config = subprocess.run(
        celeriac_command("proj", "config"),
        cwd=guarded.directory,
        env=subprocess_env(guarded.directory),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert config.returncode == 0 and "dashboard.passwords" in config.stdout, config.stderr
    assert "SEKRIT" not in config.stdout + config.stderr


def test_everything_is_served_under_the_url_prefix(guarded: Cluster, client: Celeriac) -> None:
    done = client.send_task("proj.add", (2, 3))
    assert done.get(timeout=20) == 5
    wait_for(lambda: _state(guarded, done.id) == "SUCCESS", 20, "the task's success")
    pages = ["/workers", f"/worker/{HOST}", "/tasks", f"/task/{done.id}", "/queues", "/dead-letters"]
    pages += ["/schedule", "/graphs"]
    links: set[str] = set()
    for page in pages:
        text = guarded.get_text(page)
        assert '<meta name="prefix" content="/flower">' in text
        links |= _local_links(text)
    assert links and all(link.startswith("/flower/") for link in links), sorted(links)
    assert {"/flower/static/app.js", "/flower/static/app.css", "/flower/tasks"} <= links
    for link in links:  # every asset and page they name is served there
        reply = _at_origin(guarded, link.split("#")[0])
        assert reply.status == 200, (link, reply.status)
    assert guarded.get("/openapi.json")["servers"] == [{"url": "/flower"}]
    assert guarded.get("/api/workers?status=true")[HOST] is True
    assert guarded.get(f"/api/task/info/{done.id}")["state"] == "SUCCESS"
    assert "Workers" in guarded.get_text("/")  # the index redirects within the prefix
    for path in ("/workers", "/api/workers", "/live", "/static/app.js", "/openapi.json", "/healthcheck"):
        assert _at_origin(guarded, path).status == 404, path

    # The live stream, under the prefix, says when a task changed.
    request = urllib.request.Request(guarded.base + "/live", headers=guarded.credentials)
    with urllib.request.urlopen(request, timeout=20) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert stream.readline() == b"retry: 1000\n"
        sent = client.send_task("proj.add", (1, 1))
        line = wait_for(lambda: _next_data(stream, sent.id), 20, "the task in the live stream")
        assert b'"tasks"' in line


def test_actions_from_another_site_are_refused_and_do_nothing(guarded: Cluster, client: Celeriac) -> None:
    waiting = client.send_task("proj.add", (7, 7), countdown=600)
    client.send_task("proj.missing")
    wait_for(lambda: client.transport.dead_letters(None, 10), 20, "a dead letter")
    everything = actions(guarded, waiting.id)
    assert len(everything) >= 18  # all of them: test_openapi.py checks the list against the routes
    for method, path in everything:
        for cross_site in ({"Origin": EVIL}, {"Sec-Fetch-Site": "cross-site"}, {"Origin": guarded.origin}):
            reply = guarded.request(method, path, headers=cross_site)
            refusal = (reply.status, reply.text[:24])
            assert refusal == (403, "cross-site request refus"), (method, path, reply)
        wrong = guarded.request(method, path, headers={"Origin": guarded.origin, "X-CSRF-Token": "forged"})
        assert wrong.status == 403, (method, path)
    # Nothing happened: the worker still runs and answers, the dead letter is there, the pool as it was.
    assert client.send_task("proj.add", (1, 2)).get(timeout=20) == 3
    assert guarded.worker is not None and guarded.worker.proc.poll() is None
    assert len(client.transport.dead_letters(None, 10)) == 1
    stats = guarded.get(f"/api/workers?refresh=1&workername={HOST}")[HOST]["stats"]
    assert stats["pool"]["max-concurrency"] == 1
    assert NEVER_STORED not in str(guarded.get("/api/dashboard/schedule"))
    assert NEVER_SENT not in guarded.get("/api/task/types")["task-types"]

    # The page's own token (same origin), a bearer token, or a script (no Origin) get through.
    same_site = {"Origin": guarded.origin, "X-CSRF-Token": csrf_token(guarded)}
    grown = guarded.request("POST", f"/api/worker/pool/grow/{HOST}?n=1", headers=same_site)
    assert grown.status == 200 and grown.json() == {"message": f"Growing '{HOST}' worker's pool by 1"}
    purged = guarded.request("POST", "/api/dashboard/dead-letters/purge", headers=same_site)
    assert purged.json() == {"message": "Purged 1 dead letters", "purged": 1}
    shrunk = _anonymous(guarded, "POST", f"/api/worker/pool/shrink/{HOST}?n=1", {**BEARER, "Origin": EVIL})
    assert shrunk.status == 200, shrunk
    revoked = guarded.request("POST", f"/api/task/revoke/{waiting.id}")
    assert revoked.json() == {"message": f"Revoked '{waiting.id}'"}
    assert client.transport.dead_letters(None, 10) == []


def test_read_only_refuses_every_action_and_does_nothing(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path, f"sqlite:///{tmp_path / 'broker.sqlite3'}")
    client = Celeriac("client", config=str(tmp_path / "celeriac.toml"), env={})
    try:
        cluster.start_worker(HOST)
        cluster.start_dashboard("--read-only")
        wait_for(lambda: cluster.get("/api/workers?status=true").get(HOST), 20, "worker online")
        done = client.send_task("proj.add", (2, 3))
        assert done.get(timeout=20) == 5
        client.send_task("proj.missing")
        wait_for(lambda: client.transport.dead_letters(None, 10), 20, "a dead letter")
        wait_for(lambda: _state(cluster, done.id) == "SUCCESS", 20, "the task's success")
        for method, path in actions(cluster, done.id):
            for headers in ({}, {"Origin": cluster.origin, "X-CSRF-Token": csrf_token(cluster)}):
                reply = cluster.request(method, path, headers=headers)
                assert (reply.status, reply.text) == (403, "Read only mode is enabled"), (method, path)
        # Nothing happened. The worker takes tasks in order, so once a task sent now is
        # done, a task any refused request had sent would have been seen before it.
        after = client.send_task("proj.add", (1, 1))
        assert after.get(timeout=20) == 2
        wait_for(lambda: _state(cluster, after.id) == "SUCCESS", 20, "the later task's success")
        assert NEVER_SENT not in cluster.get("/api/task/types")["task-types"]
        assert cluster.worker is not None and cluster.worker.proc.poll() is None
        assert len(client.transport.dead_letters(None, 10)) == 1
        assert client.AsyncResult(done.id).state == "SUCCESS"  # not aborted, not revoked
        stats = cluster.get(f"/api/workers?refresh=1&workername={HOST}")[HOST]["stats"]
        assert stats["pool"]["max-concurrency"] == 1
        assert cluster.get("/api/dashboard/schedule")["entries"] == []
        # The pages offer no action at all.
        for page in (f"/worker/{HOST}", f"/task/{done.id}", "/dead-letters", "/schedule"):
            text = cluster.get_text(page)
            assert "data-action" not in text and "read-only" in text, page
    finally:
        client.close()
        cluster.processes.kill()


@pytest.mark.parametrize("address", ["0.0.0.0", "192.0.2.1", "::"])
def test_a_non_loopback_address_needs_credentials(tmp_path: Path, address: str) -> None:
    project = Cluster(tmp_path, f"sqlite:///{tmp_path / 'broker.sqlite3'}")
    refused = _dashboard(project, "--address", address)
    assert refused.returncode == 2, refused.stderr
    assert f"refusing to serve on {address} without credentials" in refused.stderr
    assert "dashboard on http" not in refused.stderr


def test_with_credentials_a_non_loopback_address_is_let_through(tmp_path: Path) -> None:
    broker = f"sqlite:///{tmp_path / 'broker.sqlite3'}"
    project = Cluster(tmp_path, broker, dashboard_toml=f'tokens = ["{TOKEN}"]\n')
    # 192.0.2.1 (TEST-NET-1) is assigned to no interface here: past the check, binding fails,
    # and nothing ever listens outside loopback.
    started = _dashboard(project, "--address", "192.0.2.1")
    assert "refusing" not in started.stderr
    assert "dashboard on http://192.0.2.1" in started.stderr
    assert "192.0.2.1" in started.stderr and "bind" in started.stderr, started.stderr
    assert "SEKRIT" not in started.stderr + started.stdout


def test_bad_credentials_in_the_config_are_named_not_shown(tmp_path: Path) -> None:
    broker = f"sqlite:///{tmp_path / 'broker.sqlite3'}"
    project = Cluster(tmp_path, broker, dashboard_toml='passwords = ["SEKRIT"]\n')
    refused = _dashboard(project)
    assert refused.returncode != 0
    assert "entry 1 of passwords is not 'user:password'" in refused.stderr, refused.stderr
    assert "SEKRIT" not in refused.stderr + refused.stdout


def _dashboard(project: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    command = celeriac_command("proj", "dashboard", "--port", str(free_port()), *args)
    command = [c for c in command if c not in ("-A", "proj")]
    return subprocess.run(
        command,
        cwd=project.directory,
        env=subprocess_env(project.directory),
        capture_output=True,
        text=True,
        timeout=60,
    )


def _state(cluster: Cluster, task_id: str) -> str | None:
    reply = cluster.request("GET", f"/api/task/info/{task_id}")
    return reply.json()["state"] if reply.status == 200 else None


def _at_origin(cluster: Cluster, path: str) -> Reply:
    saved, cluster.base = cluster.base, cluster.origin
    try:
        return cluster.request("GET", path)
    finally:
        cluster.base = saved


def _next_data(stream: Any, task_id: str) -> bytes | None:
    line: bytes = stream.readline()
    return line if line.startswith(b"data:") and task_id.encode() in line else None


class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src", "action") and value and value.startswith("/"):
                self.found.add(value)


def _local_links(text: str) -> set[str]:
    parser = _Links()
    parser.feed(text)
    return parser.found
