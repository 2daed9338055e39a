# The two set-up commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test demo bench lint clean

$(BIN)/mass: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/mass

run: $(BIN)/mass
	$(BIN)/mass

test: $(BIN)/mass
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

bench: $(BIN)/mass
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/python bench/detector_throughput.py
	$(BIN)/python bench/live_cost.py
	$(BIN)/python bench/replay_throughput.py
	$(BIN)/python bench/transport_latency.py
	$(BIN)/python bench/quality.py

lint: $(BIN)/mass
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) data .pytest_cache .hypothesis
