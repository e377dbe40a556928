# `make test` needs only Python 3.11+ with pip: it builds .venv from the pinned requirements.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run demo test lint requirements clean

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check \
		-r requirements.txt -r requirements-dev.txt
	touch $(STAMP)

## run: serve the function on :8080, wired to the Tulip simulator unless TULIP_BASE_URL is set
run: $(STAMP)
	$(BIN)/python -m devtools.run

## demo: like run, but send the example request, show the link before and after, and stop
demo: $(STAMP)
	$(BIN)/python -m devtools.run --demo

## test: lint, then every test (sets up .venv first if needed)
test: lint
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## requirements: re-pin requirements*.txt after editing requirements*.in
requirements: $(STAMP)
	$(BIN)/pip-compile --quiet --strip-extras --allow-unsafe --no-emit-index-url \
		--no-emit-find-links -o requirements.txt requirements.in
	$(BIN)/pip-compile --quiet --strip-extras --no-emit-index-url \
		--no-emit-find-links -o requirements-dev.txt requirements-dev.in

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
