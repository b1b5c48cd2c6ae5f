# lr-suite: `make help` lists the targets.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LRSUITE := $(BIN)/lrsuite
# The registry's names (common/domain.py, DOMAIN_MODULES), read without starting Python.
DOMAINS := $(shell sed -n 's/^    "\([a-z0-9_]*\)": "[a-z0-9_.]*",$$/\1/p' common/domain.py)
OUTPUT ?= runs
ARGS ?=
PYTEST_ARGS ?=
TB_PORT ?= 6006
TRAIN := $(addprefix train-,$(DOMAINS))
LRFIND := $(addprefix lr-find-,$(DOMAINS))
SWEEP := $(addprefix sweep-,$(DOMAINS))
TUNE := $(addprefix tune-,$(DOMAINS))
COMPARE := $(addprefix compare-,$(DOMAINS))
export KERAS_BACKEND := tensorflow
export TF_CPP_MIN_LOG_LEVEL ?= 2

.DEFAULT_GOAL := help
.PHONY: help install test lint format tensorboard report demo bench clean $(TRAIN) $(LRFIND) $(SWEEP) $(TUNE) $(COMPARE)

help: ## List the targets (paths and port as set now; e.g. make help OUTPUT=out)
	@grep -E '^[a-zA-Z$$()%_-]+:.*## ' $(MAKEFILE_LIST) | \
	  sed -e 's/^$$(TRAIN)/train-<domain>/' -e 's/^$$(LRFIND)/lr-find-<domain>/' \
	      -e 's/^$$(SWEEP)/sweep-<domain>/' -e 's/^$$(TUNE)/tune-<domain>/' -e 's/^$$(COMPARE)/compare-<domain>/' | \
	  sed -e 's|$$(VENV)|$(VENV)|g' -e 's|$$(OUTPUT)|$(OUTPUT)|g' -e 's|$$(TB_PORT)|$(TB_PORT)|g' | \
	  awk 'BEGIN{FS=":.*## "}{printf "  %-24s %s\n",$$1,$$2}'
	@echo "  domains: $(DOMAINS)"

$(BIN)/activate: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(BIN)/activate

install: $(BIN)/activate ## Create the virtualenv ($(VENV)) and install the suite with dev tools

test: install ## Run the tests (real-data tests need LRSUITE_SHARED_DATA)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install ## Check style with ruff
	$(BIN)/ruff check common domains tests bench

format: install ## Fix what ruff can fix
	$(BIN)/ruff check --fix common domains tests bench

$(TRAIN): train-%: install ## Train a domain: make train-sentiment ARGS="--lr 3e-4 --epochs 3"
	$(LRSUITE) train $* --output $(OUTPUT) $(ARGS)

$(LRFIND): lr-find-%: install ## LR range test: make lr-find-sentiment ARGS="--data DIR"
	$(LRSUITE) lr-find $* --output $(OUTPUT) $(ARGS)

$(SWEEP): sweep-%: install ## Rates, schedules, optimizers + report: make sweep-sentiment ARGS="--data DIR"
	$(LRSUITE) sweep $* --output $(OUTPUT) $(ARGS)

$(TUNE): tune-%: install ## Keras Tuner search: make tune-sentiment ARGS="--data DIR --tuner hyperband"
	$(LRSUITE) tune $* --output $(OUTPUT) $(ARGS)

$(COMPARE): compare-%: install ## Rate-free vs tuned: make compare-sentiment ARGS="--data DIR --seeds 3"
	$(LRSUITE) compare $* --preset rate-free --output $(OUTPUT) $(ARGS)

demo: install ## Short sweeps in every domain on generated data, offline ($(OUTPUT)/demo/report.html)
	$(LRSUITE) demo --output $(OUTPUT)/demo

bench: install ## Quick run of every bench script, tables in bench/results.md (under 15 min)
	$(BIN)/python bench/run_all.py

report: install ## One page with the latest sweep of every domain ($(OUTPUT)/report.html)
	$(LRSUITE) report --output $(OUTPUT)

train-% lr-find-% sweep-% tune-% compare-%:
	$(error Unknown domain '$*'. Expected one of: $(DOMAINS))

tensorboard: install ## Serve $(OUTPUT)/ in TensorBoard on 127.0.0.1:$(TB_PORT)
	@mkdir -p $(OUTPUT)
	@echo "TensorBoard: http://127.0.0.1:$(TB_PORT)/"
	$(BIN)/tensorboard --logdir $(OUTPUT) --host 127.0.0.1 --port $(TB_PORT)

clean: ## Remove caches (runs/ is kept: it holds your results)
	rm -rf .pytest_cache .ruff_cache build *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
