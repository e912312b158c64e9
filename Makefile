# Quick start:  make book   (run every notebook, build the HTML book)
#               make test   (the test suite, notebooks at smoke scale, the book build)
SHELL := /bin/bash
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
SCALE  ?= default

.PHONY: setup book notebooks html test bench clean rl-full rl-screen llm-full mutate
.DEFAULT_GOAL := book

setup: $(VENV)/.setup-done

# Idempotent: re-runs only when the requirement files change.
$(VENV)/.setup-done: requirements.txt requirements-nodeps.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==25.3
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-nodeps.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

notebooks: setup
	$(PY) -m soo.notebooks --scale $(SCALE)

# --all: every page again (a few seconds), since a page that only glues values (the discussion) does not change when
# the notebook it glues from is re-run, and Sphinx would keep its old HTML
html: setup
	$(VENV)/bin/jupyter-book build . --path-output book -W --keep-going --all
	@echo "book: $(CURDIR)/book/_build/html/index.html"

book: notebooks
	$(MAKE) html

test: setup
	$(PY) -m pytest -q

bench: setup
	for f in benchmarks/bench_*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

# The RL protocol at the paper's scale (8 seeds: 16 baselines, 48 fine-tunings) from nothing, written to
# book/data/rl_full/$(RL_SETTING) (weights, metrics, manifests). Long: see the README for measured times.
# RL_SETTING: official (default) or a setting of soo.rl.config.SETTINGS; RL_FULL_ARGS="--device cuda" on a GPU.
RL_SETTING ?= official
rl-full: setup
	$(PY) -m soo.rl.experiment --scale full --setting $(RL_SETTING) --keep $(RL_FULL_ARGS)

# The screen of training settings for the RL premise, round 2 (baselines at the protocol's length and twice it,
# 8 seeds per setting, both parts of the criterion), written row by row to book/data/rl_screen/results_round2.json;
# RL_SCREEN_ARGS="--round 1" for round 1 (short baselines, results.json), "--settings gamma099" for one setting.
rl-screen: setup
	$(PY) -m soo.rl.screen $(RL_SCREEN_ARGS)

clean:
	rm -rf book/_build book/executed book/figures

# The LLM chapter's paper protocol on the embedded model (organism, start row, the control ladder x 5 seeds, 250
# scenarios per order by log-prob and generation), kept in book/data/llm_full. Resumable: kept runs are read back.
# LLM_FULL_ARGS="--device cuda" on a GPU; "--only soo_mse lm" or "--seeds 0 1" for a part of it.
llm-full: setup
	$(PY) -m soo.llm.full $(LLM_FULL_ARGS)

# Mutation testing (not part of make test): mutmut, pinned in requirements-mutate.txt, on the core modules with the
# tests that cover them ([tool.mutmut] in pyproject.toml; the functions in scripts/mutation_report.py), from an empty
# mutants/ folder; writes benchmarks/mutation.json and prints every surviving mutant. About an hour on 2 cores.
mutate: setup
	$(PY) -m pip install --quiet -r requirements-mutate.txt
	$(PY) scripts/mutation_report.py --run
