# `make test` needs only Python 3.11+ with pip: it builds .venv from the pinned requirements.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# checkov pins old libraries: it gets a venv of its own.
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
SCHEMAS := .cache/provider-schemas
SCHEMA_STAMP := $(SCHEMAS)/.downloaded

.PHONY: venv run demo test quick fuzz soak bench bench-outage lint check-infra requirements clean

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check \
		-r requirements.txt -r requirements-dev.txt
	touch $(STAMP)

## venv: only set up .venv (for the tools in ops/ the deploy guide runs, and those in devtools/)
venv: $(STAMP)

# The providers' schemas (cdktn-provider wheels, about 140 MB), downloaded, never installed.
$(SCHEMA_STAMP): requirements-schema.txt
	rm -rf $(SCHEMAS)
	$(PYTHON) -m pip download --quiet --disable-pip-version-check --no-deps --require-hashes \
		-r requirements-schema.txt -d $(SCHEMAS)
	touch $(SCHEMA_STAMP)

$(CHECKOV_STAMP): requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
		-r requirements-checkov.txt
	touch $(CHECKOV_STAMP)

# Where `make run` and `make demo` listen: loopback only unless HOST says otherwise. The queue's
# retries default to what infra/ deploys (10 s to 600 s, 100 deliveries); shorter ones suit demos.
HOST ?= 127.0.0.1
PORT ?= 8080
SIMULATOR_PORT ?= 8081
EVENTS_PORT ?= 8082
PUBSUB_PORT ?= 8085
PUBSUB_STATE_PORT ?= 8084
CONSOLE_PORT ?= 8083
FIRESTORE_PORT ?= 8086
MIN_BACKOFF ?= 10
MAX_BACKOFF ?= 600
MAX_DELIVERY_ATTEMPTS ?= 100
RUN := $(BIN)/python -m devtools.runner --host $(HOST) --port $(PORT) \
	--simulator-port $(SIMULATOR_PORT) --events-port $(EVENTS_PORT) --pubsub-port $(PUBSUB_PORT) \
	--pubsub-state-port $(PUBSUB_STATE_PORT) --console-port $(CONSOLE_PORT) \
	--firestore-port $(FIRESTORE_PORT) --min-backoff $(MIN_BACKOFF) --max-backoff $(MAX_BACKOFF) \
	--max-delivery-attempts $(MAX_DELIVERY_ATTEMPTS)

## run: the deployed shape locally (queue mode: the webhook function, the Pub/Sub simulator, the
## events function), wired to the Tulip simulator unless TULIP_BASE_URL is set
run: $(STAMP)
	$(RUN)

## demo: like run, but send two example requests, show the links before and after, and stop
demo: $(STAMP)
	$(RUN) --demo

## test: lint, then every test (sets up .venv first if needed, and, as root, the browser the
## console's test drives)
test: lint
	@devtools/checks/install_browser.sh
	$(BIN)/python -m pytest

## quick: the tests that start no process (unit, through the app, infra parsing): seconds
quick: $(STAMP)
	$(BIN)/python -m pytest -q -m "not processes"

## fuzz: schemathesis against openapi.yaml on the running function and simulator (fixed seed)
fuzz: $(STAMP)
	$(BIN)/python -m devtools.checks.fuzz

## bench: tulip-link against a minimal and a naive function on loopback; a table and bench.json
bench: $(STAMP)
	$(BIN)/python -m devtools.bench

## bench-outage: a backlog queued during an outage, drained into a rate-limited Tulip, as deployed
## and as before (devtools/bench/backlog.py)
bench-outage: $(STAMP)
	$(BIN)/python -m devtools.bench.backlog

## soak: the tests RUNS times in a row (default 30), naming any that failed even once
RUNS ?= 30
soak: $(STAMP)
	PYTHON=$(BIN)/python bash devtools/checks/soak.sh $(RUNS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache
	@if command -v terraform >/dev/null 2>&1; then \
		terraform fmt -check -recursive infra && echo "terraform fmt: infra is formatted"; \
	else \
		echo "SKIPPED: terraform is not installed, so 'terraform fmt -check' did not run"; \
	fi

## check-infra: infra/ against the providers' schemas, the checkov policy scan (both offline),
## and `terraform validate` where the providers can be downloaded
VALIDATE_DIR := .cache/terraform-validate
check-infra: $(CHECKOV_STAMP) $(SCHEMA_STAMP) $(STAMP)
	$(BIN)/python -m devtools.checks.provider_schema --wheels $(SCHEMAS)
	PROVIDER_SCHEMAS=$(SCHEMAS) $(BIN)/python -m pytest -q tests/test_provider_schema.py
	@# A file checkov cannot parse is not scanned, and checkov still passes: fail on it here.
	@$(CHECKOV_VENV)/bin/checkov --directory infra --framework terraform \
		--skip-download --quiet --compact >.cache/checkov.log 2>&1; status=$$?; \
	cat .cache/checkov.log; \
	if grep -q "Parsing errors" .cache/checkov.log; then \
		echo "checkov could not parse a file of infra/, so it did not scan it"; exit 1; \
	fi; exit $$status
	@rm -rf $(VALIDATE_DIR) && mkdir -p $(VALIDATE_DIR) && \
		cp -r infra/*.tf infra/*.tftpl infra/modules $(VALIDATE_DIR)/
	@if ! command -v terraform >/dev/null 2>&1; then \
		echo "SKIPPED: terraform validate: terraform is not installed"; \
	elif terraform -chdir=$(VALIDATE_DIR) init -backend=false -input=false \
			>$(VALIDATE_DIR)/init.log 2>&1; then \
		terraform -chdir=$(VALIDATE_DIR) validate; \
	else \
		echo "SKIPPED: terraform validate: the providers could not be downloaded" \
			"($(VALIDATE_DIR)/init.log); the schema check above stands in for it"; \
	fi

## requirements: re-pin requirements*.txt after editing requirements*.in
requirements: $(STAMP)
	$(BIN)/pip-compile --quiet --strip-extras --allow-unsafe --no-emit-index-url \
		--no-emit-find-links -o requirements.txt requirements.in
	$(BIN)/pip-compile --quiet --strip-extras --no-emit-index-url \
		--no-emit-find-links -o requirements-dev.txt requirements-dev.in

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .cache .pytest_cache .ruff_cache .mypy_cache .hypothesis \
		.schemathesis infra/build
