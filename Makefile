# The two commands a newcomer needs: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Each plugin is its own distribution; requirements-workspace.txt lists them (editable, with extras).
PLUGINS := sqlite json threads solo prefork asyncio gevent redis pickle yaml msgpack compression signing events cron webhooks amqp prometheus filesystem memcached sqlalchemy sqs s3 dynamodb azureblob gcs couchdb eventlet migrate dashboard opentelemetry
# Framework integrations under contrib/ are distributions too (celeriac-django, celeriac-flask).
CONTRIB := django flask
SOURCES := kernel/src $(foreach p,$(PLUGINS),plugins/$(p)/src) $(foreach c,$(CONTRIB),contrib/$(c)/src) contrib/plugin-template/src
STAMP := $(VENV)/.installed
# Every third-party version the development, test, lint and benchmark environments install is
# pinned in requirements.lock (written by `make lock` with uv) and applied as constraints, build
# requirements (setuptools) included, so a fresh clone installs what CI tested.
UV_VERSION := 0.13.9
UV := $(VENV)/bin/uv
LOCK := requirements.lock
LOCK_INPUTS := requirements-workspace.txt requirements-dev.txt requirements-bench.txt requirements-build.txt
PIP_INSTALL := $(UV) pip install --quiet --python $(PY)

.PHONY: emulators install demo test chaos test-latest test-lowest lint lock lock-upgrade bench clean dist assets chromium wheel-check

install: $(STAMP)

$(UV):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(STAMP): $(UV) Makefile $(LOCK) $(LOCK_INPUTS) kernel/pyproject.toml $(foreach p,$(PLUGINS),plugins/$(p)/pyproject.toml) contrib/plugin-template/pyproject.toml $(foreach c,$(CONTRIB),contrib/$(c)/pyproject.toml)
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

# Emulators the result-store tests start on free ports, from npm, outside the committed tree:
# Azurite (Azure Blob Storage; 3.35.0 is the last that runs on Node.js 20) and pouchdb-server
# (CouchDB's HTTP API). The tests look for them in $(NPM_PREFIX)/node_modules/.bin.
NPM_PREFIX := .cache/npm
EMULATORS := azurite@3.35.0 pouchdb-server@4.2.0
NPM_STAMP := $(NPM_PREFIX)/.installed-$(subst @,-,$(subst $(eval) ,_,$(EMULATORS)))

emulators: $(NPM_STAMP)

$(NPM_STAMP):
	mkdir -p $(NPM_PREFIX)
	npm install --prefix $(NPM_PREFIX) --no-save --no-audit --no-fund --loglevel=error $(EMULATORS)
	touch $@

test: install emulators assets chromium
	$(PY) -m pytest -n 4 tests plugins contrib

# celeriac-dashboard's front-end libraries come from the npm registry at build time (versions in
# plugins/dashboard/package-lock.json) and are copied into its package; nothing is fetched at run
# time and nothing third-party is committed (static/vendor is ignored by git).
DASHBOARD := plugins/dashboard
VENDOR := $(DASHBOARD)/src/celeriac_dashboard/static/vendor
assets: $(VENDOR)/.built

$(VENDOR)/.built: $(DASHBOARD)/package.json $(DASHBOARD)/package-lock.json
	cd $(DASHBOARD) && npm ci --no-audit --no-fund --loglevel=error
	mkdir -p $(VENDOR)
	cp $(DASHBOARD)/node_modules/uplot/dist/uPlot.iife.min.js $(DASHBOARD)/node_modules/uplot/dist/uPlot.min.css \
		$(DASHBOARD)/node_modules/uplot/LICENSE $(VENDOR)/
	touch $@

# The browser the dashboard's tests drive: Debian's chromium (Playwright's own download is never
# used). Installed once; a second run finds it and does nothing.
chromium:
	@command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

# `make wheel-check`: the dashboard's wheel from make dist, installed alone in a fresh
# virtualenv, carries its vendored front-end files and serves them.
wheel-check: dist
	$(PY) $(DASHBOARD)/scripts/check_wheel.py dist

# The suite against the newest releases, without the lock: drift shows here before it breaks CI.
# Not run by CI. Uses its own environment, .venv-latest.
test-latest:
	$(MAKE) --no-print-directory VENV=.venv-latest LOCK_MODE=latest _suite

# The suite against the lowest releases the distributions' own pyproject files admit (uv's
# lowest-direct resolution): the lower bounds they declare are tested, not guessed. Not run by CI.
test-lowest:
	$(MAKE) --no-print-directory VENV=.venv-lowest LOCK_MODE=lowest-direct _suite

_suite: $(UV) emulators assets chromium
	$(PIP_INSTALL) --resolution $(if $(filter latest,$(LOCK_MODE)),highest,$(LOCK_MODE)) --upgrade \
		-r requirements-workspace.txt -r requirements-dev.txt
	$(PY) -m pytest -n 4 tests plugins contrib

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy $(SOURCES)
	$(VENV)/bin/lint-imports

# The long fault-injection run: every scenario of tests/reliability/test_chaos.py on every
# transport with CHAOS_TASKS tasks each (make test runs the same scenarios with a few dozen),
# then the table: scenario x transport -> sent, ran once, lost, duplicated, recovery seconds.
CHAOS_TASKS ?= 1000
CHAOS_REPORT := .cache/chaos-report.jsonl
chaos: install
	mkdir -p .cache && rm -f $(CHAOS_REPORT)
	# The table is printed whatever the tests said; then make fails if any of them failed.
	status=0; CHAOS_TASKS=$(CHAOS_TASKS) CHAOS_REPORT=$(abspath $(CHAOS_REPORT)) \
		$(PY) -m pytest -p no:randomly -q tests/reliability/test_chaos.py || status=$$?; \
		$(PY) tools/chaos_table.py $(CHAOS_REPORT); exit $$status

bench: install
	$(PIP_INSTALL) -c $(LOCK) -r requirements-bench.txt
	$(PY) benchmarks/run.py
	$(PY) benchmarks/run.py --broker redis
	$(PY) benchmarks/run.py --broker redis --pool prefork --peers celery,huey
	$(PY) benchmarks/run.py --broker amqp
	$(PY) benchmarks/amqp_hops.py
	$(PY) benchmarks/amqp_ceiling.py
	$(PY) benchmarks/run.py --broker sqs
	$(PY) benchmarks/serializers.py
	$(PY) benchmarks/pools.py
	$(PY) benchmarks/canvas.py
	$(PY) benchmarks/result_stores.py
	$(PY) plugins/events/benchmarks/events_overhead.py
	$(PY) plugins/webhooks/benchmarks/sink_overhead.py

# Every distribution (the kernel and each plugin) as a wheel and an sdist in dist/, built with
# uv under the lock's build constraints, after checking their versions are in step; then they
# are installed together in a fresh venv (the minimum set runs a task, then celeriac[all]).
dist: install assets
	rm -rf dist
	$(PY) tools/distributions.py check
	$(PY) tools/distributions.py build --out dist --uv $(UV)
	$(PY) tools/distributions.py verify --out dist --uv $(UV)

clean:
	rm -rf $(VENV) .venv-latest .venv-lowest contrib/examples/demo/*.sqlite3* $(VENDOR) $(DASHBOARD)/node_modules
