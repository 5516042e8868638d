# Two commands do all set-up on a fresh machine:
#   make demo   create .venv if missing, install, run the default scenario
#   make test   same set-up, then the test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO ?= scenarios/quickstart.yaml

.PHONY: install demo test test-fast browser bench data models models-variable-rate models-context models-mbt2018 models-cheng2020-anchor models-elic models-multispectral clean

$(STAMP): setup.cfg constraints.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip==26.3" "setuptools==84.2.1" "wheel==0.48.0"
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[test]"
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/edgespacecom run $(DEMO)

# The view's browser test needs a Chromium: Debian's, installed here when missing and possible
# (root, apt and the Debian mirror); otherwise that one test skips and says why.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	    { DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq chromium >/dev/null 2>&1 || \
	      { timeout 300 apt-get update -qq >/dev/null 2>&1 && \
	        DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq chromium >/dev/null 2>&1; }; }; } || \
	  echo "note: no Chromium could be installed (needs root, apt and the Debian mirror): the browser test will skip"

# One pytest worker per core (pytest-xdist; each worker's torch on one thread: tests/conftest.py).
test: $(STAMP) browser
	$(PY) -m pytest -n auto --dist worksteal

test-fast: $(STAMP)
	$(PY) -m pytest -n auto --dist worksteal -m "not slow"

bench: $(STAMP)
	$(PY) benchmarks/bench_sync.py
	$(PY) benchmarks/bench_dlrc_overhead.py
	$(PY) benchmarks/bench_table2.py
	$(PY) benchmarks/bench_scale.py
	$(PY) benchmarks/bench_regions.py

# Training needs the EO training and validation splits in the data cache:
#   make data                      (from the public sources)
#   make data MIRROR=/path/to/eo   (offline, from a local mirror with the same layout)
data: $(STAMP)
	$(VENV)/bin/edgespacecom data fetch "eo:rgb/train/*" "eo:revisit/naip/*" $(if $(MIRROR),--mirror $(MIRROR))

# Re-train the shipped weights on the EO training split (CPU, resumable: run again to continue).
# The recipe of docs/training.md (crops resampled from regions up to 2x larger, transforms in
# bf16); the step counts are the shipped ones, the exported model is the step the validation
# split (NAIP 2009) chooses. Several hours on 2 cores, far less on a GPU (--device auto takes
# one when torch sees it). Writes dlrc_agents/codecs/weights/ (explicitly: train's default is
# $$EDGESPACECOM_WEIGHTS, never the package).
DEVICE ?= auto
TRAIN := $(VENV)/bin/edgespacecom train --batch 8 --crop 128 --lr 3e-4 --threads 1 --device $(DEVICE) --storage int8
SHIPPED_TRAIN := $(TRAIN) --downscale 2 --precision bf16
W := dlrc_agents/codecs/weights
ifneq ($(filter cuda%,$(DEVICE)),)
# On a GPU (make models DEVICE=cuda): one call of at most 10 min continues every shipped RGB model from its
# shipped weights (batch 16 x 256², the resampled bf16 recipe, lr 1e-4) for a fixed time each, validates,
# and writes the validation's choice into the package; run it again to continue the schedules (runs/gpu/).
# Each call stops far before its schedule's low-rate tail, so it validates and exports an average of the
# weights (--ema: 3-9 % lower validation loss than the raw weights mid-schedule, docs/training.md).
GPU_TRAIN := $(VENV)/bin/edgespacecom train --batch 16 --crop 256 --lr 1e-4 --threads 4 --device $(DEVICE) \
	--storage int8 --downscale 2 --precision bf16 --steps 40000 --val-every 250 --checkpoint-every 250 --ema 0.999
models: $(STAMP)
	$(foreach l,0.0067 0.013 0.025 0.0483,$(GPU_TRAIN) --max-minutes 1.6 --arch bmshj2018-hyperprior --lambda $(l) \
	    --init $(W)/bmshj2018-hyperprior_lambda$(l).pt --out runs/gpu/bmshj2018-hyperprior_lambda$(l) \
	    --export $(W)/bmshj2018-hyperprior_lambda$(l).pt &&) \
	$(GPU_TRAIN) --max-minutes 1.2 --arch mbt2018-mean --lambda 0.0067 --init $(W)/mbt2018-mean_lambda0.0067.pt \
	    --out runs/gpu/mbt2018-mean_lambda0.0067 --export $(W)/mbt2018-mean_lambda0.0067.pt
else
models: $(STAMP)
	$(SHIPPED_TRAIN) --arch bmshj2018-hyperprior --lambda 0.0067 --steps 10000 --out runs/bmshj2018-hyperprior_lambda0.0067 \
	    --export $(W)/bmshj2018-hyperprior_lambda0.0067.pt
	$(SHIPPED_TRAIN) --arch bmshj2018-hyperprior --lambda 0.0483 --steps 13500 --out runs/bmshj2018-hyperprior_lambda0.0483 \
	    --init $(W)/bmshj2018-hyperprior_lambda0.0067.pt --export $(W)/bmshj2018-hyperprior_lambda0.0483.pt
	$(SHIPPED_TRAIN) --arch bmshj2018-hyperprior --lambda 0.013 --steps 8000 --out runs/bmshj2018-hyperprior_lambda0.013 \
	    --init $(W)/bmshj2018-hyperprior_lambda0.0067.pt --export $(W)/bmshj2018-hyperprior_lambda0.013.pt
	$(SHIPPED_TRAIN) --arch bmshj2018-hyperprior --lambda 0.025 --steps 6500 --out runs/bmshj2018-hyperprior_lambda0.025 \
	    --init $(W)/bmshj2018-hyperprior_lambda0.0483.pt --export $(W)/bmshj2018-hyperprior_lambda0.025.pt
	$(SHIPPED_TRAIN) --arch mbt2018-mean --lambda 0.0067 --steps 4000 --out runs/mbt2018-mean_lambda0.0067 \
	    --init $(W)/bmshj2018-hyperprior_lambda0.0067.pt --export $(W)/mbt2018-mean_lambda0.0067.pt
	# the shipped ladder then continued at lr 1e-4: 12,000 steps for λ 0.0067 and 0.013, 6,000 for 0.025 and 0.0483
	$(foreach l,0.0067 0.013,$(SHIPPED_TRAIN) --lr 1e-4 --arch bmshj2018-hyperprior --lambda $(l) --steps 12000 \
	    --out runs/bmshj2018-hyperprior_lambda$(l)_continued --init $(W)/bmshj2018-hyperprior_lambda$(l).pt \
	    --export $(W)/bmshj2018-hyperprior_lambda$(l).pt &&) true
	$(foreach l,0.025 0.0483,$(SHIPPED_TRAIN) --lr 1e-4 --arch bmshj2018-hyperprior --lambda $(l) --steps 6000 \
	    --out runs/bmshj2018-hyperprior_lambda$(l)_continued --init $(W)/bmshj2018-hyperprior_lambda$(l).pt \
	    --export $(W)/bmshj2018-hyperprior_lambda$(l).pt &&) true
endif

# The variable-rate BMSHJ (one network for λ 0.0067-0.0483, docs/training.md#one-network-for-every-λ-variable-rate):
# warm-started from the shipped λ 0.013 model, 1600 steps, each image of a batch at one of the four λ
# (results/training/variable_rate/). Resumable; run with a larger --steps to continue it.
models-variable-rate: $(STAMP)
	$(SHIPPED_TRAIN) --lr 1e-4 --arch bmshj2018-hyperprior-vr --steps 1600 --val-every 200 \
	    --out runs/bmshj2018-hyperprior-vr --init $(W)/bmshj2018-hyperprior_lambda0.013.pt \
	    --export $(W)/bmshj2018-hyperprior-vr.pt

# Train the context models (results/training/README.md): mbt2018 warm-started from the shipped
# mbt2018-mean (same N = 128, M = 192), cheng2020-anchor (N = 128) and ELIC (N = 128, M = 192, narrower
# than the paper's 192/320 to fit the wheel) from scratch. About 1.5 h on 2 cores (make -j2); resumable
# (run again to continue). Writes dlrc_agents/codecs/weights/, 8-bit, as shipped.
models-context: models-mbt2018 models-cheng2020-anchor models-elic
models-mbt2018: $(STAMP)
	$(TRAIN) --arch mbt2018 --lambda 0.0067 --channels 128 192 --steps 1000 --out runs/mbt2018_lambda0.0067 \
	    --init $(W)/mbt2018-mean_lambda0.0067.pt --export $(W)/mbt2018_lambda0.0067.pt
models-cheng2020-anchor: $(STAMP)
	$(TRAIN) --arch cheng2020-anchor --lambda 0.0067 --steps 200 --out runs/cheng2020-anchor_lambda0.0067 \
	    --export $(W)/cheng2020-anchor_lambda0.0067.pt
models-elic: $(STAMP)
	$(TRAIN) --arch elic2022-official --lambda 0.0067 --channels 128 192 --steps 400 --out runs/elic2022-official_lambda0.0067 \
	    --export $(W)/elic2022-official_lambda0.0067.pt

# Train the N-band models of the second study (docs/training.md, "N-band models") into dlrc_agents/codecs/weights/:
# band adapters (--adapter: the first and last layers and the hyper-latent prior of the shipped RGB
# bmshj2018-hyperprior of each λ, the rest of it frozen and shared) at λ 0.0067 and 0.0483 for
# 1 band (SpaceNet panchromatic, rows 0-511; validation rows 512-703, test 704-895), 4 bands (On Cloud
# N Sentinel-2 B02 B03 B04 B08, chips 1-3; validation chip 4, test chip 5) and 13 bands (Sen1Floods11,
# rows 0-255; validation 256-383, test 384-511); the validation split picks the step. And the seed's
# model, Cheng 2020 with a K = 3 Gaussian mixture (cheng2020-gmm, N = 64 for the CPU budget), from
# scratch on the 4-band split. Needs `edgespacecom data fetch "eo:multispectral/*" "eo:segmentation/*"`.
# About 3 h on 2 cores with `make -j2 models-multispectral` (the whole 1- and 4-band models below take most of it); resumable.
PAN := eo:segmentation/spacenet_pan_buildings/sample_geotiff.tif
OCN := eo:segmentation/sentinel2_oncloudn_cloud
S2H := eo:multispectral/sentinel2_sen1floods11/Spain_7370579_S2Hand.tif
# Sentinel-2 products carry 15-bit digital numbers (reflectance × 10000, 1 … 2^15 − 1): the 4- and 13-band
# models normalise by that range (--sample-range), so no sample the sensor can return is clipped. The
# SpaceNet panchromatic product documents no range narrower than its uint16 type: percentiles there.
S2_RANGE := 32767
BAND_TRAIN := $(TRAIN) --arch bmshj2018-hyperprior --steps 200 --val-every 50 --adapter
BAND_MODELS := $(foreach b,1 4 13,$(foreach l,0.0067 0.0483,models-$(b)band-$(l))) models-1band-0.0018 models-4band-whole \
    models-4band-gmm
models-multispectral: $(BAND_MODELS)
models-4band-gmm: $(STAMP)
	$(TRAIN) --arch cheng2020-gmm --channels 64 64 --lambda 0.0067 --steps 150 --val-every 25 --out runs/cheng2020-gmm_4band_lambda0.0067 \
	    --band-set "$(OCN)/chip_1/B0*.tif" "$(OCN)/chip_2/B0*.tif" "$(OCN)/chip_3/B0*.tif" --val-band-set "$(OCN)/chip_4/B0*.tif" \
	    --export $(W)/cheng2020-gmm_4band_lambda0.0067.pt
# The low-rate panchromatic model (multiview_pleiades' second λ): a whole 1-band network, not an adapter
# (no RGB trunk at λ 0.0018 is shipped), warm-started from the RGB λ 0.0067 model (its first layer
# summed over the colour bands), at λ 0.0018: 800 steps, then resumed to 1600 as shipped (each call's
# last 10 % at lr × 0.1), the step chosen on the validation rows. About 25 min on one thread.
models-1band-0.0018: $(STAMP)
	for S in 800 1600; do $(TRAIN) --arch bmshj2018-hyperprior --steps $$S --val-every 100 --lambda 0.0018 \
	    --out runs/bmshj2018-hyperprior_1band_lambda0.0018 --init $(W)/bmshj2018-hyperprior_lambda0.0067.pt \
	    --band-set "$(PAN)@0:512" --val-band-set "$(PAN)@512:704" \
	    --export $(W)/bmshj2018-hyperprior_1band_lambda0.0018.pt || exit 1; done
# Whole 4-band models at the rates the adapters cannot reach (0.07-0.3 bits per sample; the frozen RGB
# trunk caps what an adapter spends): λ 0.2 and 0.8 from the RGB λ 0.0483 model (first layer summed over the
# colour bands), then 3.2 from the λ 0.8 run, 2400 steps each (about 38 min on one thread; make -j2 runs two
# at once), the step chosen on chip 4. Explicit targets: they take precedence over the adapters' models-4band-% rule.
WHOLE_4BAND = $(TRAIN) --arch bmshj2018-hyperprior --steps 2400 --val-every 300 \
	    --band-set "$(OCN)/chip_1/B0*.tif" "$(OCN)/chip_2/B0*.tif" "$(OCN)/chip_3/B0*.tif" --val-band-set "$(OCN)/chip_4/B0*.tif" \
	    --sample-range $(S2_RANGE)
models-4band-whole: models-4band-0.2 models-4band-0.8 models-4band-3.2
models-4band-0.2 models-4band-0.8: models-4band-%: $(STAMP)
	$(WHOLE_4BAND) --lambda $* --out runs/bmshj2018-hyperprior_4band_lambda$* --init $(W)/bmshj2018-hyperprior_lambda0.0483.pt \
	    --export $(W)/bmshj2018-hyperprior_4band_lambda$*.pt
models-4band-3.2: models-4band-0.8
	$(WHOLE_4BAND) --lambda 3.2 --out runs/bmshj2018-hyperprior_4band_lambda3.2 --init runs/bmshj2018-hyperprior_4band_lambda0.8/state.pt \
	    --export $(W)/bmshj2018-hyperprior_4band_lambda3.2.pt
models-1band-%: $(STAMP)
	$(BAND_TRAIN) --lambda $* --out runs/bmshj2018-hyperprior_1band_lambda$* --init $(W)/bmshj2018-hyperprior_lambda$*.pt \
	    --band-set "$(PAN)@0:512" --val-band-set "$(PAN)@512:704" \
	    --export $(W)/bmshj2018-hyperprior_1band_lambda$*.pt
models-4band-%: $(STAMP)
	$(BAND_TRAIN) --steps 300 --lambda $* --out runs/bmshj2018-hyperprior_4band_lambda$* --init $(W)/bmshj2018-hyperprior_lambda$*.pt \
	    --band-set "$(OCN)/chip_1/B0*.tif" "$(OCN)/chip_2/B0*.tif" "$(OCN)/chip_3/B0*.tif" --val-band-set "$(OCN)/chip_4/B0*.tif" \
	    --sample-range $(S2_RANGE) --export $(W)/bmshj2018-hyperprior_4band_lambda$*.pt
models-13band-%: $(STAMP)
	$(BAND_TRAIN) --steps $(if $(filter 0.0067,$*),400,300) --lambda $* --out runs/bmshj2018-hyperprior_13band_lambda$* \
	    --init $(W)/bmshj2018-hyperprior_lambda$*.pt \
	    --band-set "$(S2H)@0:256" --val-band-set "$(S2H)@256:384" \
	    --sample-range $(S2_RANGE) --export $(W)/bmshj2018-hyperprior_13band_lambda$*.pt

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
