#!/usr/bin/env bash
# The one install recipe, shared by the Makefile, the Dockerfile and the install test.
# usage: scripts/install.sh PYTHON [EXTRAS] [TORCH_SPEC]
#   PYTHON      interpreter of the target environment (e.g. .venv/bin/python)
#   EXTRAS      pip extras of this package, e.g. "[test]" (default: none)
#   TORCH_SPEC  torch requirement installed *first*, so pip never resolves a bare `torch`
#               to a multi-GB CUDA build (default: torch==2.13.0, a CPU wheel)
# Prints one line per step (with the time it took) and pip's own progress: a fresh install
# downloads ~1 GB and takes minutes. BIDS_STROKE_PIP_QUIET=1 makes pip quiet again.
set -euo pipefail
py=${1:?usage: install.sh PYTHON [EXTRAS] [TORCH_SPEC]}
extras=${2:-}
torch_spec=${3:-${TORCH_SPEC:-torch==2.13.0}}
src=${BIDS_STROKE_SRC:-$(cd "$(dirname "$0")/.." && pwd)}
editable=${BIDS_STROKE_EDITABLE:-1}
pip_flags=(--progress-bar on)
if [ "${BIDS_STROKE_PIP_QUIET:-0}" = "1" ]; then pip_flags=(--quiet); fi

started=$SECONDS
step() {  # step N/3 description...
    echo "install.sh: [$1/3] ${*:2} ($((SECONDS - started)) s so far)" >&2
}
step 1 "upgrading pip"
"$py" -m pip install "${pip_flags[@]}" --upgrade pip
step 2 "installing ${torch_spec} first (CPU build unless TORCH_INDEX_URL says otherwise)"
"$py" -m pip install "${pip_flags[@]}" ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} "$torch_spec"
if [ "$editable" = "1" ]; then
    step 3 "installing bids_stroke${extras} (editable) and its dependencies"
    "$py" -m pip install "${pip_flags[@]}" -e "${src}${extras}"
else
    step 3 "installing bids_stroke${extras} and its dependencies"
    "$py" -m pip install "${pip_flags[@]}" "${src}${extras}"
fi
"$py" -c "import torch, bids_stroke; print('bids_stroke', bids_stroke.__version__, 'torch', torch.__version__)"
echo "install.sh: done in $((SECONDS - started)) s" >&2
