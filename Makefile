# The two commands a newcomer needs: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PLUGINS := sqlite json threads solo
EDITABLES := -e kernel $(foreach p,$(PLUGINS),-e plugins/$(p)) -e 'plugins/json[fast]' -e contrib/plugin-template
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast lint bench clean

install: $(STAMP)

$(STAMP): kernel/pyproject.toml $(foreach p,$(PLUGINS),plugins/$(p)/pyproject.toml) contrib/plugin-template/pyproject.toml requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(EDITABLES) -r requirements-dev.txt
	touch $(STAMP)

demo: install
	cd contrib/examples/demo && ../../../$(PY) run_demo.py

test: install
	$(PY) -m pytest -n 2 tests plugins contrib

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy kernel/src $(foreach p,$(PLUGINS),plugins/$(p)/src) contrib/plugin-template/src

bench: install
	$(PY) -m pip install --quiet -r requirements-bench.txt
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) contrib/examples/demo/*.sqlite3*
