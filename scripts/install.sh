#!/usr/bin/env bash
# The one install recipe, shared by the Makefile, the Dockerfile and the install test.
# usage: scripts/install.sh PYTHON [EXTRAS] [TORCH_SPEC]
#   PYTHON      interpreter of the target environment (e.g. .venv/bin/python)
#   EXTRAS      pip extras of this package, e.g. "[test]" (default: none)
#   TORCH_SPEC  torch requirement installed *first*, so pip never resolves a bare `torch`
#               to a multi-GB CUDA build (default: torch==2.13.0, a CPU wheel)
set -euo pipefail
py=${1:?usage: install.sh PYTHON [EXTRAS] [TORCH_SPEC]}
extras=${2:-}
torch_spec=${3:-${TORCH_SPEC:-torch==2.13.0}}
src=${BIDS_STROKE_SRC:-$(cd "$(dirname "$0")/.." && pwd)}
editable=${BIDS_STROKE_EDITABLE:-1}
"$py" -m pip install --quiet --upgrade pip
"$py" -m pip install --quiet ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} "$torch_spec"
if [ "$editable" = "1" ]; then
    "$py" -m pip install --quiet -e "${src}${extras}"
else
    "$py" -m pip install --quiet "${src}${extras}"
fi
"$py" -c "import torch, bids_stroke; print('bids_stroke', bids_stroke.__version__, 'torch', torch.__version__)"
