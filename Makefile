# SaBN reproduction suite. `make help` lists the targets.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_WORKERS ?= 2
# Paper tables: seeds of the full-scale runs, of the smoke runs, processes per run (torchrun), extra overrides for
# every run, e.g. make reproduce-table-gan SEEDS="0 1 2" NPROC=4 SET="data.root=/data eval.inception.weights=/w.pth"
SEEDS ?= 0 1 2
SMOKE_SEEDS ?= 0
NPROC ?= 1
SET ?=
ANALYSIS_SEEDS ?= 0 1
ANALYSIS_EVERY ?= 25
RUNS ?= runs

REPRODUCE = $(BIN)/python scripts/reproduce.py --runs $(RUNS) $(foreach s,$(SET),--set $(s))
FULL = --scale full --seeds $(SEEDS) --nproc $(NPROC)
# Smoke runs are tiny models: one thread each is faster than two fighting over two cores.
SMOKE = --scale smoke --seeds $(SMOKE_SEEDS)
SMOKE_ENV = OMP_NUM_THREADS=1

.DEFAULT_GOAL := help
.PHONY: help install test lint bench demo analysis-demo \
	reproduce-table-gan reproduce-table-gan-smoke reproduce-table-nas reproduce-table-nas-smoke \
	reproduce-table-adv reproduce-table-adv-smoke reproduce-table-nst reproduce-table-nst-smoke \
	reproduce-table-cls reproduce-table-cls-smoke

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_.-]+:.*## / {printf "  %-28s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

install: $(STAMP) ## Create .venv and install the project with its dev extra (quick when already installed)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@

demo: install ## SNGAN-32 with CCBN vs SaBN on the embedded digits: samples and a side-by-side table (~10 CPU min)
	$(BIN)/python -m tasks.gan.demo

test: install ## Run the test suite on CPU (installs first if needed)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS)

lint: install ## Check the code with ruff
	$(BIN)/ruff check sabn tasks scripts tests

bench: install ## Run every benchmark script (timings/memory as ratios against a baseline measured in the same run)
	$(BIN)/python scripts/bench_norms.py
	$(BIN)/python scripts/bench_gan.py
	$(BIN)/python scripts/bench_nas.py
	$(BIN)/python scripts/bench_adv.py
	$(BIN)/python scripts/bench_nst.py
	$(BIN)/python scripts/bench_cls.py

analysis-demo: install ## GAN demo pair with the gradient analysis on (SEEDS via ANALYSIS_SEEDS), figure + summary
	for seed in $(ANALYSIS_SEEDS); do \
	  $(BIN)/python -m tasks.gan.demo seed=$$seed analysis.every=$(ANALYSIS_EVERY) \
	    'run_dir=$(RUNS)/analysis-demo/gan/$${exp}/seed$${seed}' || exit 1; \
	done
	$(BIN)/python scripts/plot_analysis.py --task gan --scale demo --runs $(RUNS)/analysis-demo \
	  --out $(RUNS)/analysis/gan-demo

reproduce-table-gan: install ## GAN table (CIFAR-10: SNGAN, AutoGAN, BigGAN × CCBN/SaBN; IS, FID), GPU scale
	$(REPRODUCE) gan $(FULL)

reproduce-table-gan-smoke: install ## The GAN table's pipeline in CPU minutes on the digits
	$(SMOKE_ENV) $(REPRODUCE) gan $(SMOKE)

reproduce-table-nas: install ## NAS table (DARTS/GDAS × BN/CCBN/SaBN/SaAuxBN on CIFAR-100, ImageNet16-120), GPU scale
	$(REPRODUCE) nas $(FULL)

reproduce-table-nas-smoke: install ## The NAS search pipeline in CPU minutes (collapse indicators; no benchmark needed)
	$(SMOKE_ENV) $(REPRODUCE) nas_smoke $(SMOKE)

reproduce-table-adv: install ## Adversarial tables (clean branch SA; adv branch SA, PGD-10/20 RA), GPU scale
	$(REPRODUCE) adv_clean adv_adv $(FULL)

reproduce-table-adv-smoke: install ## The adversarial tables' pipeline in CPU minutes on the digits
	$(SMOKE_ENV) $(REPRODUCE) adv_clean adv_adv $(SMOKE)

reproduce-table-nst: install ## Style-transfer losses AdaIN vs SaAdaIN (+ loss curves), GPU scale
	$(REPRODUCE) nst $(FULL)
	$(BIN)/python -m tasks.nst.plot $(RUNS)/nst/adain/full/seed* $(RUNS)/nst/saadain/full/seed* \
	  --out $(RUNS)/tables/nst-full-curves.png

reproduce-table-nst-smoke: install ## The style-transfer table's pipeline in CPU minutes (stand-in encoder, demo photos)
	$(SMOKE_ENV) $(REPRODUCE) nst $(SMOKE)
	$(BIN)/python -m tasks.nst.plot $(RUNS)/nst/adain/smoke/seed* $(RUNS)/nst/saadain/smoke/seed* \
	  --out $(RUNS)/tables/nst-smoke-curves.png

reproduce-table-cls: install ## MimicNorm CIFAR-100 table (accuracy and memory ratio vs BN), GPU scale
	$(REPRODUCE) cls $(FULL)

reproduce-table-cls-smoke: install ## The MimicNorm table's pipeline in CPU minutes on the digits
	$(SMOKE_ENV) $(REPRODUCE) cls $(SMOKE)
