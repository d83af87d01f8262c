# Renkei — the two commands of the README, and the pieces they are made of.
#   make demo   install everything, start a local Kafka, run the demo
#               (make demo SECURE=1: on the local secure Kafka, each actor its own principal)
#   make test   install everything, lint, type-check and run the whole test suite
#               (make test-secure: the flow tests again on a secure Kafka, as CI does)

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

test: lint
	$(BIN)/pytest -q -p no:cacheprovider --durations=30

# The tests whose every actor logs in as its own principal (tests/integration/principals.py),
# on the secure cluster under RENKEI_HOME if one runs there, else on one started for them;
# with the attack suite, tests/security/, once it exists.
SECURE_TESTS := $(addprefix tests/integration/,test_exchange.py test_life_events.py \
	test_audit.py test_demo.py test_hub_process.py test_link_enrol.py \
	test_signature_verifier.py test_metrics_endpoint.py) $(wildcard tests/security)

# Of tests/security, the attacks on the broker (marked integration): the fuzz tests and the
# other in-memory ones need no broker, and `make test` has run them already.
test-secure: setup
	RENKEI_TEST_SECURE=1 $(BIN)/pytest -q -p no:cacheprovider --durations=15 \
		-m "not slow and not (security and not integration)" $(SECURE_TESTS)

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
