# Renkei — the two commands of the README, and the pieces they are made of.
#   make demo   install everything, start a local Kafka, run the demo
#               (make demo SECURE=1: on the local secure Kafka, each actor its own principal)
#   make test   install everything, lint, type-check and run the whole test suite: a
#               plaintext pass, then a secure pass (make test-secure alone) of the flow
#               tests and the broker attacks, each actor its own principal

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test test-secure lint unit integration bench kafka-up kafka-down dashboard clean

setup: $(STAMP)

# Reinstall only when the dependency list changes.
$(STAMP): pyproject.toml infra/setup.sh
	PYTHON=$(PYTHON) bash infra/setup.sh
	touch $(STAMP)

demo: setup
	$(BIN)/renkei demo $(if $(SECURE),--secure)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/mypy tests benchmarks
	$(BIN)/lint-imports

unit: setup
	$(BIN)/pytest tests/unit -q

integration: setup
	$(BIN)/pytest tests/integration -q

# Each test runs once. The secure pass takes the flow tests and the attacks on the broker
# (marked secure_pass by tests/conftest.py; the slow ones stay in the plaintext pass) on
# the secure cluster running under $(RENKEI_HOME)/secure, else on one started for them.
# The tests that need no broker (tests/unit, the fuzz tests of tests/security) are mostly
# CPU-bound and run on both cores; the integration tests one at a time, as their timings
# assume.
test: lint
	$(BIN)/pytest -q -p no:cacheprovider --durations=10 -n 2 -m "not integration"
	$(BIN)/pytest -q -p no:cacheprovider --durations=30 -m "integration and (not secure_pass or slow)"
	$(MAKE) --no-print-directory test-secure

SECURE_HOME := $(if $(RENKEI_HOME),$(RENKEI_HOME)/secure)

test-secure: setup
	env -u RENKEI_BOOTSTRAP $(if $(SECURE_HOME),RENKEI_HOME=$(SECURE_HOME),-u RENKEI_HOME) \
		RENKEI_TEST_SECURE=1 $(BIN)/pytest -q -p no:cacheprovider --durations=15 \
		-m "secure_pass and not slow" tests/integration tests/security

# `make bench` runs the quick set, `make bench BENCH="exchange 20000"` one benchmark; both
# start the local Kafka when RENKEI_BOOTSTRAP is unset, as `make demo` does, and leave it up.
bench: setup
	$(BIN)/python -m benchmarks $(BENCH)

# The Grafana dashboard, infra/grafana/renkei.json, regenerated from infra/grafana/dashboard.py.
dashboard: setup
	$(BIN)/python -m infra.grafana.dashboard

kafka-up: setup
	$(BIN)/renkei kafka up

kafka-down: setup
	$(BIN)/renkei kafka down

clean:
	-$(BIN)/renkei kafka down
	rm -rf $(VENV) .renkei .pytest_cache .mypy_cache .ruff_cache
