# Two commands do all the set-up on a fresh machine:
#   make run    start the server and its viewer on the bundled demo folder
#   make test   run the whole test suite
# Both create the virtual environment (.venv) and install what they need.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
HOST   ?= 127.0.0.1
PORT   ?= 8765

.PHONY: run test bench bench-quick lint clean deps

deps: $(VENV)/.installed web/node_modules/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test,bench]'
	touch $@

web/node_modules/.installed: $(wildcard web/package.json web/package-lock.json)
	@if [ -f web/package.json ]; then cd web && npm ci --no-audit --no-fund; fi
	@mkdir -p web/node_modules && touch $@

run: deps
	$(VENV)/bin/pagebridge serve demo --host $(HOST) --port $(PORT)

test: deps
	$(VENV)/bin/ruff check bridge bench tests
	$(VENV)/bin/mypy
	node --test web/test/
	$(PY) -m pytest -ra $(PYTEST_ARGS)

bench: deps
	$(PY) -m bench $(BENCH_ARGS)

bench-quick: deps
	$(PY) -m bench --quick

lint: deps
	$(VENV)/bin/ruff check bridge tests bench
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) web/node_modules .pytest_cache artifacts bench/results
