# Two commands do all set-up on a fresh machine:
#   make demo   create .venv if missing, install, run the default scenario
#   make test   same set-up, then the test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO ?= scenarios/quickstart.yaml

.PHONY: install demo test test-fast bench clean

$(STAMP): setup.cfg constraints.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip==26.3" "setuptools==84.2.1" "wheel==0.48.0"
	$(PY) -m pip install --quiet -c constraints.txt -e ".[test]"
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/edgespacecom run $(DEMO)

test: $(STAMP)
	$(PY) -m pytest

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow"

bench: $(STAMP)
	$(PY) benchmarks/bench_sync.py
	$(PY) benchmarks/bench_dlrc_overhead.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
