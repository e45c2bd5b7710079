# The two commands of the README, and what they need. Each installs into a virtual environment
# first (.venv in the checkout, made on first use), so what runs is what a new machine gets.
# `make test VENV=/other/venv` uses another one; `make test PYTHON=python3` installs into that
# Python instead (an environment you manage yourself).
VENV ?= .venv
PYTHON ?= $(VENV)/bin/python
# the package index torch comes from, e.g. https://download.pytorch.org/whl/cpu for the CPU-only
# build (see the README); empty: pip's configured index
TORCH_INDEX ?=
# the versions CI tested (constraints.txt); `make test-latest` installs without them
CONSTRAINTS ?= constraints.txt
PIP_INSTALL = $(PYTHON) -m pip install -q $(if $(CONSTRAINTS),-c $(CONSTRAINTS))

.PHONY: install-run install quickstart lint test test-all test-latest

ifeq ($(PYTHON),$(VENV)/bin/python)
NEW_VENV := $(VENV)/bin/python
$(VENV)/bin/python:
	python3 -m venv $(VENV)
endif

# what `morec` needs to run: torch, then the package without extras
install-run: $(NEW_VENV)
	$(PIP_INSTALL) torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PIP_INSTALL) -e .

# everything the tests need as well (pytest, ruff, mypy, Ray, Minari)
install: install-run
	$(PIP_INSTALL) -e ".[test]"

quickstart: install-run
	$(PYTHON) -m morec quickstart

# ruff's format and rules (ruff.toml), then the type checker (mypy.ini says on what)
lint: install
	$(PYTHON) -m ruff format --check .
	$(PYTHON) -m ruff check .
	$(PYTHON) -m mypy

# lint, then the suite (a run that collects no test fails: pytest exits 5)
test: lint
	$(PYTHON) -m pytest

# the suite with the slow end-to-end tests
test-all: install
	$(PYTHON) -m pytest -m ""

# the newest releases setup.py allows, in a fresh environment of their own: what the next release
# of a dependency would break (run it weekly; a failure here is news, not a broken main)
test-latest:
	rm -rf .venv-latest
	$(MAKE) test VENV=.venv-latest CONSTRAINTS=
