# Entry points for a fresh clone. Each target creates .venv when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo test lint bench plugin clean

$(BIN)/coachbridge: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/coachbridge

demo: install
	$(BIN)/coachbridge demo

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: install
	$(BIN)/python bench/reconcile.py
	$(BIN)/python bench/intake.py

plugin:
	sh wp_plugin_stub/build.sh

clean:
	rm -rf $(VENV) build dist *.egg-info coachbridge-demo
