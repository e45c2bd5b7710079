# The two commands of the README. Both install what they need first.
PYTHON ?= python3
# the package index torch comes from, e.g. https://download.pytorch.org/whl/cpu for the CPU-only
# build (see the README); empty: pip's configured index
TORCH_INDEX ?=

.PHONY: install-run install quickstart lint test test-all

# what `morec` needs to run: torch, then the package without extras
install-run:
	$(PYTHON) -m pip install -q torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PYTHON) -m pip install -q -e .

# everything the tests need as well (pytest, ruff, Ray, Minari)
install: install-run
	$(PYTHON) -m pip install -q -e ".[test]"

quickstart: install-run
	morec quickstart

# ruff with the rules in ruff.toml
lint: install
	$(PYTHON) -m ruff check .

# lint, then the suite; pytest exits 5 when it collects no test, which is not a failure of the suite.
test: lint
	$(PYTHON) -m pytest; rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 0; fi; exit $$rc

test-all: install
	$(PYTHON) -m pytest -m "" ; rc=$$?; if [ $$rc -eq 5 ]; then exit 0; fi; exit $$rc
