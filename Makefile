# Two commands do all set-up on a fresh machine:
#   make demo   create .venv if missing, install, run the default scenario
#   make test   same set-up, then the test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO ?= scenarios/quickstart.yaml

.PHONY: install demo test test-fast bench models models-context clean

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
	$(PY) benchmarks/bench_table2.py

# Re-train the shipped weights on the EO training split (CPU, resumable: run again to continue).
# The recipe of results/training/README.md (crops resampled from regions up to 2x larger,
# transforms in bf16), in one pass; several hours on 2 cores, far less on a GPU (--device auto
# takes one when torch sees it). Writes dlrc_agents/weights/.
TRAIN := $(VENV)/bin/edgespacecom train --batch 8 --crop 128 --lr 3e-4 --threads 1
SHIPPED_TRAIN := $(TRAIN) --downscale 2 --precision bf16
W := dlrc_agents/weights
models: $(STAMP)
	$(SHIPPED_TRAIN) --arch bmshj2018-hyperprior --lambda 0.0067 --steps 10000 --out runs/bmshj2018-hyperprior_lambda0.0067
	$(SHIPPED_TRAIN) --arch bmshj2018-hyperprior --lambda 0.0483 --steps 13500 --out runs/bmshj2018-hyperprior_lambda0.0483 \
	    --init $(W)/bmshj2018-hyperprior_lambda0.0067.pt
	$(SHIPPED_TRAIN) --arch bmshj2018-hyperprior --lambda 0.013 --steps 8000 --out runs/bmshj2018-hyperprior_lambda0.013 \
	    --init $(W)/bmshj2018-hyperprior_lambda0.0067.pt
	$(SHIPPED_TRAIN) --arch bmshj2018-hyperprior --lambda 0.025 --steps 6500 --out runs/bmshj2018-hyperprior_lambda0.025 \
	    --init $(W)/bmshj2018-hyperprior_lambda0.0483.pt
	$(SHIPPED_TRAIN) --arch mbt2018-mean --lambda 0.0067 --steps 4000 --out runs/mbt2018-mean_lambda0.0067 \
	    --init $(W)/bmshj2018-hyperprior_lambda0.0067.pt

# Train the context models, too large to ship (results/training/README.md): mbt2018 warm-started
# from the shipped mbt2018-mean (same N = 128, M = 192), cheng2020-anchor and ELIC from scratch.
# About 2.5 h on 2 cores; resumable (run again to continue). Writes $$EDGESPACECOM_WEIGHTS
# (default ~/.cache/edgespacecom/weights), where the rd scenarios find them.
models-context: $(STAMP)
	$(TRAIN) --arch mbt2018 --lambda 0.0067 --channels 128 192 --steps 1000 --out runs/mbt2018_lambda0.0067 \
	    --init dlrc_agents/weights/mbt2018-mean_lambda0.0067.pt
	$(TRAIN) --arch cheng2020-anchor --lambda 0.0067 --steps 800 --out runs/cheng2020-anchor_lambda0.0067
	$(TRAIN) --arch elic2022-official --lambda 0.0067 --steps 800 --out runs/elic2022-official_lambda0.0067

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
