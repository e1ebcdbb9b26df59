"""contrib/: systemd units that systemd accepts and whose worker stops warm, Kubernetes manifests
that kustomize builds and that scale on a metric the exporter really exports, a Containerfile in
step with the release."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import tomllib
from pathlib import Path
from typing import Any

import yaml

from celeriac import Celeriac
from celeriac import states
from celeriac.testing import process_group
from celeriac.testing import service_unreachable
from celeriac.testing import subprocess_env

ROOT = Path(__file__).resolve().parent.parent
SYSTEMD = ROOT / "contrib" / "systemd"
KUBERNETES = ROOT / "contrib" / "kubernetes"
KERNEL = tomllib.loads((ROOT / "kernel" / "pyproject.toml").read_text())["project"]


def installed_units(target: Path) -> dict[str, Path]:
    """The units as an admin installs them: paths pointed at this checkout's virtualenv and
    a scratch project and /etc directory; the template gets one instance, ``default``."""
    (target / "proj").mkdir()
    (target / "etc").mkdir()
    (target / "etc" / "worker-default.env").write_text("QUEUES=celery\n")
    celeriac = Path(sys.executable).parent / "celeriac"
    units = {}
    for unit in SYSTEMD.iterdir():
        text = unit.read_text()
        text = text.replace("/srv/proj/.venv/bin/celeriac", str(celeriac))
        text = text.replace("/srv/proj", str(target / "proj")).replace("/etc/celeriac", str(target / "etc"))
        name = unit.name.replace("@.", "@default.")
        units[name] = target / name
        units[name].write_text(text)
    return units


def test_systemd_accepts_the_units(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        service_unreachable("systemd-analyze is not installed (Debian: apt-get install systemd)")
    units = installed_units(tmp_path)
    assert set(units) == {
        "celeriac-worker.service",
        "celeriac-worker@default.service",
        "celeriac-workers.target",
        "celeriac-beat.service",
    }
    done = subprocess.run(
        [analyze, "verify", "--man=no", *map(str, units.values())], capture_output=True, text=True, timeout=60
    )
    # Unknown keys are only warnings to systemd: any output at all is a failure here.
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def unit_settings(unit: Path) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in unit.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith("#"):
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def test_the_worker_unit_stops_warm_as_systemd_stops_it(tmp_path: Path) -> None:
    """systemctl stop with KillMode=mixed: SIGTERM to the main process only. A prefork worker
    started with the unit's command and environment finishes its running task and exits 0."""
    settings = unit_settings(SYSTEMD / "celeriac-worker.service")
    assert settings["KillMode"] == ["mixed"] and settings["KillSignal"] == ["SIGTERM"]
    environment = dict(value.split("=", 1) for value in settings["Environment"])
    stop_timeout = float(settings["TimeoutStopSec"][0])
    assert float(environment["CELERIAC_WORKER__SHUTDOWN_TIMEOUT"]) < stop_timeout
    project = tmp_path / "proj"
    project.mkdir()
    (project / "proj.py").write_text(
        textwrap.dedent(
            """
            import time
            from celeriac import Celeriac

            app = Celeriac("proj")


            @app.task(track_started=True)
            def nap(seconds):
                time.sleep(seconds)
                return seconds
            """
        )
    )
    config = project / "celeriac.toml"
    broker = f"sqlite:///{project / 'broker.sqlite3'}"  # absolute: the client runs elsewhere
    config.write_text(f'broker = "{broker}"\n[worker]\npool = "prefork"\nconcurrency = 2\n')
    environment["CELERIAC_CONFIG"] = str(config)
    command = settings["ExecStart"][0].split()
    assert command[0] == "/srv/proj/.venv/bin/celeriac"
    command = [sys.executable, "-m", "celeriac", *command[1:]]
    client = Celeriac("proj", config=config, env={})
    try:
        with process_group(project, subprocess_env(project, **environment)) as group:
            worker = group.start(command)
            running = client.send_task("proj.nap", (1.5,))
            deadline = time.monotonic() + 20
            while running.state != states.STARTED:  # in a child process, sleeping
                assert worker.proc.poll() is None and time.monotonic() < deadline, worker.output()
                time.sleep(0.05)
            worker.signal(signal.SIGTERM)
            assert worker.wait(timeout=30) == 0
        assert running.get(timeout=5) == 1.5
        assert "shutting down (warm)" in worker.output()
    finally:
        client.close()


def kustomized() -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        service_unreachable("kubectl is not installed (Debian: apt-get install kubectl)")
    done = subprocess.run([kubectl, "kustomize", str(KUBERNETES)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [document for document in yaml.safe_load_all(done.stdout) if document]


def test_kubernetes_manifests_build_and_scale_on_an_exported_metric() -> None:
    documents = {(d["kind"], d["metadata"]["name"]): d for d in kustomized()}
    worker = documents["Deployment", "celeriac-worker"]
    scaled = documents["ScaledObject", "celeriac-worker"]
    exporter = documents["Deployment", "celeriac-exporter"]
    service = documents["Service", "celeriac-exporter"]
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert scaled["spec"]["scaleTargetRef"]["name"] == worker["metadata"]["name"]
    assert "replicas" not in worker["spec"]  # KEDA owns it
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "prometheus"
    assert float(trigger["metadata"]["threshold"]) > 0
    metric = re.match(r"max\((\w+)\{queue=\"(\w+)\"\}\)$", trigger["metadata"]["query"])
    assert metric is not None
    # The metric and the queue are what the exporter samples.
    from celeriac_prometheus import TaskMetrics

    exported = {family.name for family in TaskMetrics(buckets=(1.0,), max_label_values=10).registry.collect()}
    assert metric.group(1) in exported
    (container,) = exporter["spec"]["template"]["spec"]["containers"]
    env = {each["name"]: each.get("value") for each in container["env"]}
    assert metric.group(2) in yaml.safe_load(env["CELERIAC_PROMETHEUS__QUEUES"])
    assert container["args"][3:5] == ["prometheus", "--address"]
    port = container["ports"][0]["containerPort"]
    assert service["spec"]["ports"][0]["port"] == port == int(container["args"][-1])
    # The pod outlives the worker's own shutdown timeout: its warm shutdown turns cold first.
    spec = worker["spec"]["template"]["spec"]
    (worker_container,) = spec["containers"]
    worker_env = {each["name"]: each.get("value") for each in worker_container["env"]}
    assert spec["terminationGracePeriodSeconds"] > float(worker_env["CELERIAC_WORKER__SHUTDOWN_TIMEOUT"])


def test_containerfile_is_in_step_with_the_release() -> None:
    text = (ROOT / "contrib" / "container" / "Containerfile").read_text()
    arguments = dict(re.findall(r"^ARG (\w+)=(\S+)$", text, re.MULTILINE))
    assert arguments["CELERIAC_VERSION"] == KERNEL["version"]
    extras = set(KERNEL["optional-dependencies"])
    assert set(arguments["CELERIAC_EXTRAS"].split(",")) <= extras
    assert 'ENTRYPOINT ["tini", "--"]' in text and "STOPSIGNAL SIGTERM" in text
