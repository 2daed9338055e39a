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

# The bundled Sandy buoy recording: the days before at full speed, then 1200x,
# so the storm's 20 hours at the buoy pass in about a minute.
demo: $(BIN)/mass
	$(BIN)/mass replay mass_tui/demo/ndbc44005_gulf_of_maine_2012-10_sandy.csv --station ndbc-44005 \
		--speed 1200 --from 2012-10-28T12:00:00Z

test: $(BIN)/mass
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

bench: $(BIN)/mass
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/python bench/detector_throughput.py
	$(BIN)/python bench/live_cost.py
	$(BIN)/python bench/replay_throughput.py
	$(BIN)/python bench/transport_latency.py
	$(BIN)/python bench/ui_cost.py
	$(BIN)/python bench/quality.py
	$(BIN)/python bench/history_cost.py --postgres postgresql://postgres@127.0.0.1:5432/test

lint: $(BIN)/mass
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) data .pytest_cache .hypothesis
