# Two commands for a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CASE ?= demo-case
HOST ?= 127.0.0.1
PORT ?= 5000
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test install test-deps browser lint bench demo clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python setup.cfg pyproject.toml .ci/pins.txt
	$(BIN)/pip install -q --no-deps --require-hashes -r .ci/pins.txt
	$(BIN)/pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

# The demo case: the bundled fixtures, ingested afresh (exit 3 is expected: the fixtures hold
# deliberately malformed records, and ingest reports them).
demo: install
	rm -rf $(CASE)
	$(BIN)/discovery ingest fixtures/lark --case $(CASE) --custodian "Demo custodian" || [ $$? -eq 3 ]
	$(BIN)/discovery search whitewash --case $(CASE) --context 2 --limit 3

run: demo
	@echo "(the web UI is not built yet: the sample search above is what make run shows for now)"

browser:
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; }

test-deps: install browser

test: test-deps
	$(BIN)/ruff check discovery tests
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check discovery tests

bench: install
	$(BIN)/discovery bench --messages 200000

clean:
	rm -rf $(VENV) $(CASE) build *.egg-info test-artifacts
