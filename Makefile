# The two commands of the README. Both install what they need first.
PYTHON ?= python3

.PHONY: install quickstart test test-all

install:
	$(PYTHON) -m pip install -q torch==2.13.0
	$(PYTHON) -m pip install -q -e ".[test]"

quickstart: install
	morec quickstart

# pytest exits 5 when it collects no test; that is not a failure of the suite.
test: install
	$(PYTHON) -m pytest; rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 0; fi; exit $$rc

test-all: install
	$(PYTHON) -m pytest -m "" ; rc=$$?; if [ $$rc -eq 5 ]; then exit 0; fi; exit $$rc
