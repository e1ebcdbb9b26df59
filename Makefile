# The two commands a newcomer needs: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Each plugin is its own distribution; extras in brackets pull optional accelerators.
PLUGINS := sqlite json threads solo prefork asyncio gevent redis pickle yaml msgpack compression signing events cron webhooks amqp prometheus
INSTALLS := -e kernel -e plugins/sqlite -e 'plugins/json[fast]' -e plugins/threads -e plugins/solo \
	-e plugins/prefork -e plugins/asyncio -e plugins/gevent \
	-e 'plugins/redis[hiredis,fast]' -e plugins/pickle -e plugins/yaml -e plugins/msgpack \
	-e 'plugins/compression[zstd]' -e plugins/signing -e 'plugins/events[fast]' -e 'plugins/cron[test]' \
	-e plugins/webhooks -e plugins/amqp -e plugins/prometheus -e contrib/plugin-template
SOURCES := kernel/src $(foreach p,$(PLUGINS),plugins/$(p)/src) contrib/plugin-template/src
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench clean

install: $(STAMP)

$(STAMP): Makefile kernel/pyproject.toml $(foreach p,$(PLUGINS),plugins/$(p)/pyproject.toml) contrib/plugin-template/pyproject.toml requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(INSTALLS) -r requirements-dev.txt
	touch $(STAMP)

demo: install
	cd contrib/examples/demo && ../../../$(PY) run_demo.py

test: install
	$(PY) -m pytest -n 2 tests plugins contrib

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy $(SOURCES)

bench: install
	$(PY) -m pip install --quiet -r requirements-bench.txt
	$(PY) benchmarks/run.py
	$(PY) benchmarks/run.py --broker redis
	$(PY) benchmarks/run.py --broker amqp
	$(PY) benchmarks/serializers.py
	$(PY) benchmarks/pools.py
	$(PY) benchmarks/canvas.py
	$(PY) plugins/events/benchmarks/events_overhead.py
	$(PY) plugins/webhooks/benchmarks/sink_overhead.py

clean:
	rm -rf $(VENV) contrib/examples/demo/*.sqlite3*
