# The two commands a newcomer needs: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Each plugin is its own distribution; requirements-workspace.txt lists them (editable, with extras).
PLUGINS := sqlite json threads solo prefork asyncio gevent redis pickle yaml msgpack compression signing events cron webhooks amqp prometheus
SOURCES := kernel/src $(foreach p,$(PLUGINS),plugins/$(p)/src) contrib/plugin-template/src
STAMP := $(VENV)/.installed
# Every third-party version the development, test, lint and benchmark environments install is
# pinned in requirements.lock (written by `make lock` with uv) and applied as constraints, build
# requirements (setuptools) included, so a fresh clone installs what CI tested.
UV_VERSION := 0.13.9
UV := $(VENV)/bin/uv
LOCK := requirements.lock
LOCK_INPUTS := requirements-workspace.txt requirements-dev.txt requirements-bench.txt requirements-build.txt
PIP_INSTALL := $(UV) pip install --quiet --python $(PY)

.PHONY: install demo test test-latest test-lowest lint lock lock-upgrade bench clean

install: $(STAMP)

$(UV):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(STAMP): $(UV) Makefile $(LOCK) $(LOCK_INPUTS) kernel/pyproject.toml $(foreach p,$(PLUGINS),plugins/$(p)/pyproject.toml) contrib/plugin-template/pyproject.toml
	$(PIP_INSTALL) -c $(LOCK) --build-constraint $(LOCK) -r requirements-workspace.txt -r requirements-dev.txt
	touch $(STAMP)

# `make lock` rewrites the lock from its inputs, keeping every pin they still allow (so adding a
# dependency pins only what is new); `make lock-upgrade` moves every pin to the newest release.
# Then run `make test lint` and commit requirements.lock. The workspace's own editable
# distributions are left out: constraints name third-party releases only.
lock: $(UV)
	# uv keeps the pins it finds in its output file: start from the current lock.
	if [ -f $(LOCK) ]; then cp $(LOCK) $(LOCK).tmp; fi
	$(UV) pip compile --quiet --universal --python-version 3.11 $(LOCK_FLAGS) --custom-compile-command "make lock" \
		$(LOCK_INPUTS) -o $(LOCK).tmp
	awk '/^-e /{skip=1; next} skip && /^ /{next} {skip=0; print}' $(LOCK).tmp > $(LOCK) && rm $(LOCK).tmp

lock-upgrade:
	$(MAKE) --no-print-directory lock LOCK_FLAGS=--upgrade

demo: install
	cd contrib/examples/demo && ../../../$(PY) run_demo.py

test: install
	$(PY) -m pytest -n 2 tests plugins contrib

# The suite against the newest releases, without the lock: drift shows here before it breaks CI.
# Not run by CI. Uses its own environment, .venv-latest.
test-latest:
	$(MAKE) --no-print-directory VENV=.venv-latest LOCK_MODE=latest _suite

# The suite against the lowest releases the distributions' own pyproject files admit (uv's
# lowest-direct resolution): the lower bounds they declare are tested, not guessed. Not run by CI.
test-lowest:
	$(MAKE) --no-print-directory VENV=.venv-lowest LOCK_MODE=lowest-direct _suite

_suite: $(UV)
	$(PIP_INSTALL) --resolution $(if $(filter latest,$(LOCK_MODE)),highest,$(LOCK_MODE)) --upgrade \
		-r requirements-workspace.txt -r requirements-dev.txt
	$(PY) -m pytest -n 2 tests plugins contrib

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy $(SOURCES)
	$(VENV)/bin/lint-imports

bench: install
	$(PIP_INSTALL) -c $(LOCK) -r requirements-bench.txt
	$(PY) benchmarks/run.py
	$(PY) benchmarks/run.py --broker redis
	$(PY) benchmarks/run.py --broker redis --pool prefork --peers celery,huey
	$(PY) benchmarks/run.py --broker amqp
	$(PY) benchmarks/serializers.py
	$(PY) benchmarks/pools.py
	$(PY) benchmarks/canvas.py
	$(PY) plugins/events/benchmarks/events_overhead.py
	$(PY) plugins/webhooks/benchmarks/sink_overhead.py

clean:
	rm -rf $(VENV) .venv-latest .venv-lowest contrib/examples/demo/*.sqlite3*
