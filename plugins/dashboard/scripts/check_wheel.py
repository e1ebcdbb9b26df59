"""Check the built celeriac-dashboard wheel: it carries the front-end assets and, installed in
a fresh virtualenv from wheels alone (no source tree), serves the dashboard with them.

    make wheels && .venv/bin/python plugins/dashboard/scripts/check_wheel.py dist

(``make wheel-check`` runs both.) Third-party dependencies come from the package index at the
versions requirements.lock pins; the workspace's own distributions only from ``dist``.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
#: What the dashboard needs at run time: the kernel, its default broker, serializer and pool,
#: and the plugins it depends on.
DISTRIBUTIONS = (
    "celeriac", "celeriac_sqlite", "celeriac_json", "celeriac_threads", "celeriac_events",
    "celeriac_prometheus", "celeriac_dashboard",
)  # fmt: skip
ASSETS = ("uPlot.iife.min.js", "uPlot.min.css", "LICENSE")


def wheel_of(dist: Path, name: str) -> Path:
    found = sorted(dist.glob(f"{name}-*.whl"))
    if not found:
        sys.exit(f"no {name} wheel in {dist}: run make wheels")
    return found[-1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        body: bytes = response.read()
        return body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dist", type=Path, help="the folder make wheels wrote")
    dist = parser.parse_args().dist.resolve()

    wheel = wheel_of(dist, "celeriac_dashboard")
    with zipfile.ZipFile(wheel) as archive:
        vendored = [name for name in archive.namelist() if "/static/vendor/" in name]
        packed = {Path(name).name: archive.read(name) for name in vendored}
    missing = [asset for asset in ASSETS if asset not in packed]
    if missing:
        sys.exit(f"{wheel.name} lacks the vendored assets {missing}: run make assets before building")
    print(f"{wheel.name}: static/vendor/ holds {', '.join(sorted(packed))}")

    with tempfile.TemporaryDirectory(prefix="celeriac-wheel-") as scratch:
        where = Path(scratch)
        uv = str(Path(sys.executable).with_name("uv"))
        subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(where / "venv")], check=True)
        python = where / "venv" / "bin" / "python"
        wheels = [str(wheel_of(dist, name)) for name in DISTRIBUTIONS]
        install = [uv, "pip", "install", "-q", "--python", str(python), "-c", str(ROOT / "requirements.lock")]
        subprocess.run([*install, *wheels], check=True)

        project = where / "project"
        project.mkdir()
        port = free_port()
        (project / "celeriac.toml").write_text(
            f'broker = "sqlite:///{project / "broker.sqlite3"}"\n[dashboard]\nport = {port}\n'
            f'history = "{project / "history.sqlite3"}"\n'
        )
        command = [str(where / "venv" / "bin" / "celeriac"), "dashboard"]
        server = subprocess.Popen(command, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    if get(base + "/healthcheck") == b"OK":
                        break
                except OSError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        output = server.stdout.read().decode() if server.stdout else ""
                        sys.exit(f"the installed dashboard did not start:\n{output}")
                    time.sleep(0.2)
            graphs = get(base + "/graphs").decode()
            assert "/static/vendor/uPlot.iife.min.js" in graphs, "the graphs page names no uPlot"
            for asset in ASSETS[:2]:
                served = get(f"{base}/static/vendor/{asset}")
                assert served == packed[asset], f"{asset} served differs from the wheel's"
            installed = subprocess.run(
                [str(python), "-c", "import celeriac_dashboard; print(celeriac_dashboard.__file__)"],
                capture_output=True, text=True, check=True,
            ).stdout.strip()  # fmt: skip
            assert str(ROOT) not in installed, f"imported from the source tree: {installed}"
            print(f"fresh venv: celeriac dashboard from {installed}")
            print(f"served /graphs and {', '.join(ASSETS[:2])} identical to the wheel's ({base})")
        finally:
            server.terminate()
            server.wait(timeout=20)


if __name__ == "__main__":
    main()
