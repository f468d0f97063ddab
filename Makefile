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
KODAK_CACHE := $(or $(INR_STUDY_CACHE),$(HOME)/.cache/inr-study)/kodak

.PHONY: setup demo test lint format clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

setup: $(BIN)/.installed

demo: setup
	$(BIN)/inr-study baselines $(MIRROR_ARG) --target-bpp 0.25,0.5,1.0 -o $(DEMO_DIR)/baselines
	@echo "Baseline R-D files (CompressAI format) and per-image CSV: $(DEMO_DIR)/baselines"
	$(BIN)/inr-study encode $(KODAK_CACHE)/kodim01.png -o $(DEMO_DIR)/coolchic-v1-kodim01.inr \
		--codec coolchic-v1 --preset debug --loss "lc_ssim(0.01)" --lmbda 4e-3 --quiet \
		--summary $(DEMO_DIR)/coolchic-v1-kodim01.json > /dev/null
	$(BIN)/inr-study decode $(DEMO_DIR)/coolchic-v1-kodim01.inr -o $(DEMO_DIR)/coolchic-v1-kodim01.png
	@echo "COOL-CHIC v1 (debug preset) file, decoded image and JSON summary: $(DEMO_DIR)/coolchic-v1-kodim01.*"

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	INR_STUDY_KODAK_MIRROR=$(KODAK_MIRROR) $(BIN)/pytest

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) results .pytest_cache
