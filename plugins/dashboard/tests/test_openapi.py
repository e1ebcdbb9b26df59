"""The OpenAPI document the dashboard serves: valid OpenAPI 3.1 (openapi-spec-validator), the
same operations as the app's routes, and true to the running dashboard (schemathesis sends
generated requests to every operation and checks each answer against the document)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from celeriac.testing import wait_for
from celeriac_dashboard._flower import ROUTES as FLOWER_ROUTES
from celeriac_dashboard._openapi import openapi
from celeriac_dashboard._routes import ROUTES as PAGE_ROUTES

from .conftest import Cluster

HOST = "w1@openapi"
#: Paths in the document that are not under /api/.
_OTHERS = frozenset({"/metrics", "/healthcheck", "/live", "/openapi.json"})
_TASK_LISTS = frozenset({"/api/tasks", "/api/dashboard/tasks"})


def test_the_document_is_valid_openapi_3_1() -> None:
    from openapi_spec_validator import validate
    from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

    for prefix in ("", "/flower"):
        validate(openapi(prefix))  # type: ignore[arg-type]
    broken = openapi("")
    broken["paths"]["/api/workers"]["get"]["parameters"][0]["in"] = "body"  # not an OpenAPI location
    with pytest.raises(OpenAPIValidationError):
        validate(broken)  # type: ignore[arg-type]


def test_the_document_lists_every_api_route_and_no_other() -> None:
    paths = openapi("")["paths"]
    documented = {(method.upper(), path) for path, methods in paths.items() for method in methods}
    routed = set()
    for route in [*FLOWER_ROUTES, *PAGE_ROUTES]:
        path = re.sub(r"\{(\w+):path\}", r"{\1}", route.path)
        if path.startswith("/api/") or path in _OTHERS:
            routed |= {(method, path) for method in route.methods - {"HEAD"}}
    assert documented == routed


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Cluster]:
    """A worker and a read-only dashboard: every action answers 403, as documented."""
    cluster = Cluster(tmp_path, f"sqlite:///{tmp_path / 'broker.sqlite3'}")
    try:
        cluster.start_worker(HOST)
        cluster.start_dashboard("--read-only")
        wait_for(lambda: cluster.get("/api/workers?status=true").get(HOST), 20, "worker online")
        yield cluster
    finally:
        cluster.processes.kill()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_running_dashboard_answers_as_documented(served: Cluster) -> None:
    import hypothesis
    import schemathesis
    from schemathesis.specs.openapi.checks import positive_data_acceptance

    schema = schemathesis.openapi.from_url(served.base + "/openapi.json")
    assert served.get("/openapi.json") == openapi("")
    checked = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path == "/live":  # an endless stream; test_guard reads it
            continue

        # The task list's search syntax and received times are checked by the server, which
        # names the problem in a 400; no JSON schema can say which strings parse.
        lenient = [positive_data_acceptance] if operation.path in _TASK_LISTS else []

        @hypothesis.settings(
            max_examples=15,
            deadline=None,
            database=None,
            suppress_health_check=list(hypothesis.HealthCheck),
        )
        @hypothesis.given(case=operation.as_strategy())
        def answers_as_documented(case: schemathesis.Case) -> None:
            wait = (case.query or {}).get("timeout")
            if isinstance(wait, int | float) and wait > 1:
                case.query["timeout"] = 1  # a result's long poll: bounded here, it is not what is tested
            case.call_and_validate(base_url=served.base, timeout=30, excluded_checks=lenient)  # noqa: B023

        answers_as_documented()
        checked.append(f"{operation.method.upper()} {operation.path}")
    documented = [f"{m.upper()} {p}" for p, methods in openapi("")["paths"].items() for m in methods]
    # Schemathesis leaves out the document's own path (read above) and /live was skipped.
    expected = {op for op in documented if op not in ("GET /live", "GET /openapi.json")}
    assert set(checked) == expected, (expected - set(checked), set(checked) - expected)
