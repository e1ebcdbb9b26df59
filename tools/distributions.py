"""The project's distributions: versions in step, built into dist/, installed together in a fresh venv.

``make dist`` runs ``check``, ``build`` and ``verify``:

- ``check``: every distribution (the kernel, each ``plugins/<name>``, each framework integration
  ``contrib/<name>``) has the kernel's version; each plugin's requirement on ``celeriac`` or
  another ``celeriac-*`` admits exactly that minor series; the kernel has one extra per
  plugin, pinned to the version, and ``all``.
- ``build``: a wheel and an sdist of each, with ``uv build`` under the lock's build constraints.
- ``verify``: a fresh virtualenv gets ``celeriac[sqlite,json,threads]`` from those files (third
  parties under the lock), runs a task through a worker on SQLite, then gets ``celeriac[all]``
  and lists every plugin, none failing to load.

contrib/plugin-template (celeriac-example) is a template for third parties, not one of the
project's distributions: it is neither built nor an extra.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import textwrap
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"


def distributions() -> dict[str, Path]:
    """Distribution name -> its directory: the kernel first, then the plugins and the framework
    integrations under contrib/ (celeriac-django ...), by directory name."""
    found = {"celeriac": ROOT / "kernel"}
    projects = [*(ROOT / "plugins").glob("*/pyproject.toml"), *(ROOT / "contrib").glob("*/pyproject.toml")]
    for project in sorted(projects, key=lambda path: path.parent.name):
        if project.parent.name != "plugin-template":
            found[tomllib.loads(project.read_text())["project"]["name"]] = project.parent
    return found


def problems() -> list[str]:
    """Everything that keeps the distributions out of step, one line each."""
    metadata = {
        name: tomllib.loads((path / "pyproject.toml").read_text())["project"]
        for name, path in distributions().items()
    }
    version = Version(metadata["celeriac"]["version"])
    series = f">={version.major}.{version.minor},<{version.major}.{version.minor + 1}"
    found: list[str] = []
    for name, project in metadata.items():
        if Version(project["version"]) != version:
            found.append(f"{name} is version {project['version']}, the kernel {version}")
        for line in project.get("dependencies", []):
            requirement = Requirement(line)
            if requirement.name in metadata and requirement.specifier != SpecifierSet(series):
                found.append(
                    f"{name} requires {line!r}: the project's own must be {requirement.name}{series}"
                )
    extras = metadata["celeriac"].get("optional-dependencies", {})
    plugins = sorted(name for name in metadata if name != "celeriac")
    for name in plugins:
        extra = name.removeprefix("celeriac-")
        if extras.get(extra) != [f"{name}=={version}"]:
            found.append(
                f'kernel/pyproject.toml: extra {extra} must be ["{name}=={version}"], is {extras.get(extra)}'
            )
    if sorted(extras.get("all", [])) != [f"{name}=={version}" for name in plugins]:
        found.append(f"kernel/pyproject.toml: extra all must list every plugin at =={version}")
    for extra in set(extras) - {"all", *(name.removeprefix("celeriac-") for name in plugins)}:
        found.append(f"kernel/pyproject.toml: extra {extra} names no plugin of this repository")
    bootstrapped = re.search(r"^UV_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    locked = re.search(r"^uv==(\S+)", LOCK.read_text(), re.MULTILINE)
    if not (bootstrapped and locked and bootstrapped.group(1) == locked.group(1)):
        found.append("the Makefile's UV_VERSION and the lock's uv pin differ (make dist uses the first)")
    return found


def check() -> int:
    found = problems()
    for line in found:
        print(f"out of step: {line}", file=sys.stderr)
    if not found:
        print(f"{len(distributions())} distributions in step at {version_of_kernel()}")
    return 1 if found else 0


def version_of_kernel() -> str:
    return str(tomllib.loads((ROOT / "kernel" / "pyproject.toml").read_text())["project"]["version"])


def build(out: Path, uv: str) -> int:
    out.mkdir(parents=True, exist_ok=True)
    version = version_of_kernel()
    for name, path in distributions().items():
        subprocess.run(
            [
                uv,
                "build",
                "--quiet",
                "--sdist",
                "--wheel",
                "--out-dir",
                str(out),
                "--build-constraints",
                str(LOCK),
                str(path),
            ],
            check=True,
        )
        stem = f"{re.sub(r'[-.]+', '_', name)}-{version}"
        for artefact in (f"{stem}-py3-none-any.whl", f"{stem}.tar.gz"):
            if not (out / artefact).is_file():
                print(f"build of {name} made no {artefact}", file=sys.stderr)
                return 1
    print(f"built {len(distributions())} wheels and sdists into {out}")
    return 0


SMOKE = """
import threading
from celeriac import Celeriac
from celeriac.plugin import Worker

app = Celeriac("smoke", config=False, env={}, broker="sqlite:///smoke.sqlite3")

@app.task
def add(x, y):
    return x + y

worker = Worker(app, concurrency=2)
thread = threading.Thread(target=worker.run)
thread.start()
try:
    assert add.delay(2, 3).get(timeout=20) == 5
finally:
    worker.stop()
    thread.join(timeout=20)
print("a task ran through a worker on SQLite")
"""


def verify(out: Path, uv: str) -> int:
    """Install from ``out`` into a fresh venv: the minimum set first, then everything."""
    version = version_of_kernel()
    with tempfile.TemporaryDirectory(prefix="celeriac-dist-") as scratch:
        venv = Path(scratch) / "venv"
        subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
        python = venv / "bin" / "python"

        def install(spec: str) -> None:
            print(f"installing {spec} from {out}")
            subprocess.run(
                [
                    uv,
                    "pip",
                    "install",
                    "--quiet",
                    "--python",
                    str(python),
                    "-c",
                    str(LOCK),
                    "--find-links",
                    str(out),
                    spec,
                ],
                check=True,
            )

        install(f"celeriac[sqlite,json,threads]=={version}")
        subprocess.run([str(python), "-c", textwrap.dedent(SMOKE)], cwd=scratch, check=True)
        install(f"celeriac[all]=={version}")
        listed = subprocess.run(
            [str(venv / "bin" / "celeriac"), "plugins"],
            cwd=scratch,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        missing = [name.removeprefix("celeriac-") for name in distributions() if name != "celeriac"]
        missing = [
            name for name in missing if not re.search(rf"^\W*{re.escape(name)}\W", listed, re.MULTILINE)
        ]
        if missing or "failed" in listed.lower():
            print(f"celeriac plugins in the fresh venv lacks {missing}:\n{listed}", file=sys.stderr)
            return 1
        installed = subprocess.run(
            [uv, "pip", "list", "--python", str(python), "--format", "freeze"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        ours = sorted(line for line in installed.splitlines() if line.startswith("celeriac"))
        if len(ours) != len(distributions()) or any(not line.endswith(f"=={version}") for line in ours):
            print(f"the fresh venv has {ours}", file=sys.stderr)
            return 1
    print(f"{len(ours)} distributions installed together in a fresh venv; every plugin loads")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=("check", "build", "verify"))
    parser.add_argument("--out", type=Path, default=ROOT / "dist")
    parser.add_argument("--uv", default=str(Path(sys.executable).parent / "uv"))
    arguments = parser.parse_args()
    if arguments.command == "check":
        return check()
    if arguments.command == "build":
        return build(arguments.out.resolve(), arguments.uv)
    return verify(arguments.out.resolve(), arguments.uv)


if __name__ == "__main__":
    sys.exit(main())
