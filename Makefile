# bids_stroke — all set-up on a fresh machine goes through these targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Lock files (requirements/): one per extra set; `make lock` regenerates them all.
#   requirements/lock.txt       runtime (images, install.sh without extras)
#   requirements/lock-<x>.txt   runtime + extras <x> (sorted, '-'-joined), e.g. lock-test.txt
#   requirements/lock-cuda.txt  runtime + CUDA_LOCK_EXTRAS with PyPI's CUDA torch (GPU images)
LOCK_EXTRAS ?= test nnunet-onnx
CUDA_LOCK_EXTRAS ?= nnunet onnx
UV_VERSION ?= 0.13.9
TORCH_FIND_LINKS ?= $(or $(PIP_FIND_LINKS),https://download.pytorch.org/whl/cpu/torch/)
LOCK_TARGET := --python-version 3.11 --python-platform x86_64-manylinux_2_28 --generate-hashes \
	--custom-compile-command "make lock" --quiet
# CPU locks: PyTorch's CPU torch, and no torchvision (requirements/torch-cpu.txt says why; it is
# still resolved, for timm, but not written); a note ends each CPU lock that leaves it out.
CPU_LOCK := --override requirements/torch-cpu.txt --find-links $(TORCH_FIND_LINKS) \
	--no-emit-package torchvision
CPU_LOCK_NOTE = if grep -qx '\# torchvision' $(1); then echo '\# torchvision is left out on purpose: \
	see requirements/torch-cpu.txt (make lock)' >> $(1); fi
DEMO_DIR ?= demo
DEMO_ARGS ?=
NPROCS ?=
PYTEST_ARGS ?=

VERSION ?= $(shell sed -n 's/^__version__ = "\(.*\)"/\1/p' bids_stroke/__about__.py)

.PHONY: help venv lock demo test test-image lint bench bench-smoke docker sif clean

help:
	@echo "make demo   - create $(VENV), install, build the demo BIDS dataset, run participant + group"
	@echo "              (re-runs reuse $(DEMO_DIR)/bids and $(DEMO_DIR)/work and take seconds)"
	@echo "make test   - create $(VENV) if missing and run the test suite"
	@echo "make lint   - ruff, mypy and hadolint (ruff and mypy run with make test too)"
	@echo "make test-image - only the image build with buildah and its run (root, ~7 min)"
	@echo "make lock   - regenerate the hashed lock files in requirements/ (needs PyPI)"
	@echo "make bench  - benchmarks (bench/), results in bench/results/"
	@echo "make clean  - remove $(DEMO_DIR)/ (dataset, outputs, work folder) and build/cache folders"

$(BIN)/bids_stroke: pyproject.toml requirements/lock-test.txt | $(BIN)/uv
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	bash scripts/install.sh $(BIN)/python "[test]"
	@touch $@

venv: $(BIN)/bids_stroke

# uv (hash-pinned, requirements/uv.txt) installs the locks ~4x faster than pip
# (bench/results/install.md); where its wheel does not fit this platform, install.sh uses pip
$(BIN)/uv:
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements/uv.txt \
		|| echo "make: the uv wheel of requirements/uv.txt does not fit here: pip installs the lock"

lock: $(BIN)/uv
	$(BIN)/uv pip compile pyproject.toml requirements/build.in $(LOCK_TARGET) $(CPU_LOCK) \
		-o requirements/lock.txt
	$(call CPU_LOCK_NOTE,requirements/lock.txt)
	for x in $(LOCK_EXTRAS); do \
		$(BIN)/uv pip compile pyproject.toml requirements/build.in $(LOCK_TARGET) $(CPU_LOCK) \
			$$(for e in $$(echo $$x | tr '-' ' '); do echo --extra $$e; done) \
			-o requirements/lock-$$x.txt || exit 1; \
		$(call CPU_LOCK_NOTE,requirements/lock-$$x.txt); \
	done
	$(BIN)/uv pip compile pyproject.toml requirements/build.in $(LOCK_TARGET) \
		$(foreach e,$(CUDA_LOCK_EXTRAS),--extra $(e)) \
		--override requirements/torch-cuda.txt -o requirements/lock-cuda.txt

# Idempotent: the same dataset is reused (bids_stroke demo checks its options and files) and
# nipype resumes from $(DEMO_DIR)/work; `make clean` starts over.
demo: venv
	$(BIN)/bids_stroke demo $(DEMO_DIR)/bids --seed 0 $(DEMO_ARGS)
	$(BIN)/bids_stroke $(DEMO_DIR)/bids $(DEMO_DIR)/out participant -w $(DEMO_DIR)/work $(if $(NPROCS),--nprocs $(NPROCS))
	$(BIN)/bids_stroke $(DEMO_DIR)/bids $(DEMO_DIR)/out group

# Everything, the real SLURM cluster and image build included (~12 min on an idle 2-core
# machine); `make test-image` runs the image build alone.
test: venv
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-image: venv
	$(BIN)/python -m pytest -m image $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check bids_stroke tests bench
	$(BIN)/mypy
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
	rm -rf $(DEMO_DIR) build dist *.egg-info .pytest_cache .ruff_cache .mypy_cache
