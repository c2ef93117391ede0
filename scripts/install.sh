#!/usr/bin/env bash
# The one install recipe, shared by the Makefile, the Dockerfile, the Apptainer definition and
# the tests. Installs the hashed lock file first (every package pinned, pip --require-hashes),
# then this package without resolving anything (--no-deps --no-build-isolation).
#
# usage: scripts/install.sh PYTHON [EXTRAS]
#   PYTHON   interpreter of the target environment (e.g. .venv/bin/python)
#   EXTRAS   pip extras of this package, e.g. "[test]" (default: none)
# environment:
#   BIDS_STROKE_LOCK      lock file (default: requirements/lock.txt without extras,
#                         requirements/lock-<extras, sorted, joined by '-'>.txt with extras)
#   BIDS_STROKE_INSTALL   deps | package | all (default all): deps = the lock file only (a
#                         Docker layer that survives source edits), package = this package only
#   BIDS_STROKE_EDITABLE  1 (default) = editable install, 0 = regular install (images)
#   TORCH_INDEX_URL       extra index offering the locked torch (PyTorch's CPU index in images)
#   BIDS_STROKE_WHEELHOUSE  install offline from this folder/URL of wheels (--no-index)
#   BIDS_STROKE_PIP_QUIET   1 = quiet pip; default: a line per step (with the time so far) and
#                         pip's own progress (a fresh install downloads ~1 GB and takes minutes)
#   BIDS_STROKE_INSTALLER auto (default) | uv | pip: the lock is installed by `uv pip install`
#                         (same hashes, --require-hashes) when uv is on PATH or beside PYTHON,
#                         else by pip; bench/bench_install.py measures both
# While an installer works, a line every 30 s (BIDS_STROKE_HEARTBEAT_S) says it still does
# (pip is silent for minutes while it unpacks torch).
set -euo pipefail
py=${1:?usage: install.sh PYTHON [EXTRAS]}
extras=${2:-}
src=${BIDS_STROKE_SRC:-$(cd "$(dirname "$0")/.." && pwd)}
editable=${BIDS_STROKE_EDITABLE:-1}
step=${BIDS_STROKE_INSTALL:-all}
pip_flags=(--progress-bar on)
if [ "${BIDS_STROKE_PIP_QUIET:-0}" = "1" ]; then pip_flags=(--quiet); fi
started=$SECONDS
say() { echo "install.sh: $* ($((SECONDS - started)) s so far)" >&2; }
# run "$@" with a line every 30 s while it runs
with_heartbeat() {
    ( trap 'kill "$nap" 2>/dev/null; exit 0' TERM
      while :; do sleep "${BIDS_STROKE_HEARTBEAT_S:-30}" & nap=$!; wait "$nap"
                  say "still installing"; done ) &
    local beat=$! rc=0
    "$@" || rc=$?
    kill "$beat" 2>/dev/null; wait "$beat" 2>/dev/null || true
    return "$rc"
}
uv=""
case "${BIDS_STROKE_INSTALLER:-auto}" in
    pip) ;;
    auto|uv) uv=$(command -v uv || true)
             if [ -z "$uv" ] && [ -x "$(dirname "$py")/uv" ]; then uv="$(dirname "$py")/uv"; fi
             if [ -z "$uv" ] && [ "${BIDS_STROKE_INSTALLER:-auto}" = uv ]; then
                 echo "install.sh: BIDS_STROKE_INSTALLER=uv but no uv on PATH or beside $py" >&2
                 exit 64
             fi ;;
    *) echo "install.sh: BIDS_STROKE_INSTALLER must be auto, uv or pip" >&2; exit 64 ;;
esac

if [ -z "${BIDS_STROKE_LOCK:-}" ]; then
    names=$(printf '%s' "$extras" | tr -d '[] ' | tr ',' '\n' | sed '/^$/d' | sort | paste -sd- -)
    BIDS_STROKE_LOCK="${src}/requirements/lock${names:+-$names}.txt"
fi
if [ ! -f "$BIDS_STROKE_LOCK" ]; then
    echo "install.sh: no lock file $BIDS_STROKE_LOCK for extras '${extras}': add the extra set" \
         "to LOCK_EXTRAS in the Makefile and run 'make lock'" >&2
    exit 66
fi

sources=()
if [ -n "${BIDS_STROKE_WHEELHOUSE:-}" ]; then
    sources=(--no-index --find-links "$BIDS_STROKE_WHEELHOUSE")
elif [ -n "${TORCH_INDEX_URL:-}" ]; then
    sources=(--extra-index-url "$TORCH_INDEX_URL")
fi

case "$step" in
    deps|all)
        if [ -n "$uv" ]; then  # pip's find-links (a local wheel folder) are uv's too
            say "installing the locked dependencies from ${BIDS_STROKE_LOCK##*/} with uv"
            links=()
            for d in ${PIP_FIND_LINKS:-}; do links+=(--find-links "$d"); done
            if ! with_heartbeat "$uv" pip install --python "$py" --require-hashes --no-deps \
                    "${sources[@]}" "${links[@]}" -r "$BIDS_STROKE_LOCK"; then
                # uv reads none of pip's configuration (indexes, mirrors): pip may still reach
                # what uv could not
                say "uv could not install the lock; installing it with pip"
                uv=""
            fi
        fi
        if [ -z "$uv" ]; then
            say "installing the locked dependencies from ${BIDS_STROKE_LOCK##*/}"
            with_heartbeat "$py" -m pip install "${pip_flags[@]}" --require-hashes --no-deps \
                "${sources[@]}" -r "$BIDS_STROKE_LOCK"
        fi ;;
    package) ;;
    *) echo "install.sh: BIDS_STROKE_INSTALL must be deps, package or all" >&2; exit 64 ;;
esac
# The CPU locks leave torchvision out on purpose (requirements/torch-cpu.txt says why). One left
# in this environment by an older lock that does not import beside this torch (PyPI's build,
# made for PyPI's CUDA torch) is removed, so that whatever looks for it finds it absent.
in_lock() { grep -qiE "^$1==" "$BIDS_STROKE_LOCK"; }
if [ "$step" != package ] && ! in_lock torchvision; then
    tv_state=$("$py" -c 'import importlib.util as u
if u.find_spec("torchvision") is None:
    print("absent")
else:
    try:
        import torchvision  # noqa: F401
        print("ok")
    except Exception:
        print("broken")' 2>/dev/null | tail -n 1 || true)
    if [ "$tv_state" = broken ]; then
        "$py" -m pip uninstall --yes --quiet torchvision >&2
        say "removed torchvision: it is not in ${BIDS_STROKE_LOCK##*/} and did not import beside this torch"
    fi
fi
if [ "$step" = deps ]; then
    exit 0
fi
say "installing bids_stroke${extras}"
if [ "$editable" = "1" ]; then
    "$py" -m pip install "${pip_flags[@]}" --no-deps --no-build-isolation "${sources[@]}" -e "${src}${extras}"
else
    "$py" -m pip install "${pip_flags[@]}" --no-deps --no-build-isolation "${sources[@]}" "${src}${extras}"
fi
# the lock and pyproject.toml agree: every requirement of the installed set is satisfied, except
# timm's torchvision where the lock leaves it out (nothing bids_stroke runs imports timm)
if check=$("$py" -m pip check 2>&1); then
    printf '%s\n' "$check"
else
    rest=$(printf '%s\n' "$check" | grep -vE '^timm [^ ]+ requires torchvision, which is not installed\.$' || true)
    if in_lock torchvision || [ -n "$rest" ]; then
        printf '%s\n' "$check" >&2
        exit 1
    fi
    say "pip check: consistent; torchvision (required by timm) left out on purpose, see requirements/torch-cpu.txt"
fi
"$py" -c "import torch, bids_stroke; print('bids_stroke', bids_stroke.__version__, 'torch', torch.__version__)"
say "done"
