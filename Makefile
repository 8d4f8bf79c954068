# Set-up and the two main jobs. Everything installs into .venv with torch pinned (constraints.txt).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install --disable-pip-version-check -q -c constraints.txt

.PHONY: install demo test lint bench

$(BIN)/facegen: pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(PIP) torch==2.13.0
	$(PIP) -e ".[dev]"
	touch $(BIN)/facegen

install: $(BIN)/facegen

demo: install
	$(BIN)/facegen demo --out demo-output --overwrite

test: install
	$(BIN)/ruff check facegen tests bench
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --durations=15

bench: install
	$(BIN)/python bench/synth.py
	$(BIN)/python bench/ingest.py
