# `make test` needs only Python 3.11+ with pip: it builds .venv from the pinned requirements.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint requirements clean

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check \
		-r requirements.txt -r requirements-dev.txt
	touch $(STAMP)

## run: serve the function on :8080 with the settings in the environment or .env
run: $(STAMP)
	set -a; if [ -f .env ]; then . ./.env; fi; set +a; \
		$(BIN)/functions-framework --target link_records --source main.py --port 8080

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
