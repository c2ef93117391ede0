# bids_stroke — all set-up on a fresh machine goes through these targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_VERSION ?= 2.13.0
DEMO_DIR ?= demo
DEMO_ARGS ?=
NPROCS ?= 2
PYTEST_ARGS ?=

VERSION ?= $(shell sed -n 's/^__version__ = "\(.*\)"/\1/p' bids_stroke/__about__.py)

.PHONY: help venv demo test lint bench bench-smoke docker sif clean

help:
	@echo "make demo   - create $(VENV), install, build the demo BIDS dataset, run participant + group"
	@echo "              (re-runs reuse $(DEMO_DIR)/bids and $(DEMO_DIR)/work and take seconds)"
	@echo "make test   - create $(VENV) if missing and run the test suite"
	@echo "make lint   - ruff and hadolint"
	@echo "make bench  - benchmarks (bench/), results in bench/results/"
	@echo "make clean  - remove $(DEMO_DIR)/ (dataset, outputs, work folder) and build/cache folders"

$(BIN)/bids_stroke: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	bash scripts/install.sh $(BIN)/python "[test]"
	@touch $@

venv: $(BIN)/bids_stroke

# Idempotent: the same dataset is reused (bids_stroke demo checks its options and files) and
# nipype resumes from $(DEMO_DIR)/work; `make clean` starts over.
demo: venv
	$(BIN)/bids_stroke demo $(DEMO_DIR)/bids --seed 0 $(DEMO_ARGS)
	$(BIN)/bids_stroke $(DEMO_DIR)/bids $(DEMO_DIR)/out participant -w $(DEMO_DIR)/work --nprocs $(NPROCS)
	$(BIN)/bids_stroke $(DEMO_DIR)/bids $(DEMO_DIR)/out group

test: venv
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check bids_stroke tests bench
	$(BIN)/hadolint Dockerfile

docker:
	docker build -t bids_stroke:$(VERSION) --build-arg VERSION=$(VERSION) .

sif: docker
	apptainer build bids_stroke-$(VERSION).sif singularity.def

bench: venv
	$(BIN)/python -m bench.run_all

bench-smoke: venv
	$(BIN)/python -m bench.run_all --smoke

clean:
	rm -rf $(DEMO_DIR) build dist *.egg-info .pytest_cache .ruff_cache
