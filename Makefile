# Renkei — the two commands of the README, and the pieces they are made of.
#   make demo   install everything, start a local Kafka, run the demo
#   make test   install everything, lint, type-check and run the whole test suite

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test lint unit integration bench kafka-up kafka-down clean

setup: $(STAMP)

# Reinstall only when the dependency list changes.
$(STAMP): pyproject.toml infra/setup.sh
	PYTHON=$(PYTHON) bash infra/setup.sh
	touch $(STAMP)

demo: setup
	$(BIN)/renkei demo

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
	$(BIN)/pytest -q -p no:cacheprovider

# `make bench` runs the quick set, `make bench BENCH="exchange 20000"` one benchmark; both
# start the local Kafka when RENKEI_BOOTSTRAP is unset, as `make demo` does, and leave it up.
bench: setup
	$(BIN)/python -m benchmarks $(BENCH)

kafka-up: setup
	$(BIN)/renkei kafka up

kafka-down: setup
	$(BIN)/renkei kafka down

clean:
	-$(BIN)/renkei kafka down
	rm -rf $(VENV) .renkei .pytest_cache .mypy_cache .ruff_cache
