VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint bench deps-check clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/mappa-record serve

test: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check api service domain projections migrations tests bench .ci
	$(VENV)/bin/ruff format --check api service domain projections migrations tests bench .ci
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) -m bench $(BENCH_ARGS)

# The pins of pyproject.toml with a newer release on the package index (ADR 022).
deps-check: $(STAMP)
	$(PY) .ci/deps_check.py

clean:
	rm -rf $(VENV) .data
