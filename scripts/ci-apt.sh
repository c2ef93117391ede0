#!/usr/bin/env bash
# System packages that some tests use; those tests skip cleanly without them:
#   chromium, poppler-utils, fonts-dejavu-core - tests/test_group_browser.py renders the group
#     report in headless Chromium (PNG, PDF) and reads the PDF with pdftotext;
#   r-base-core (opt-in: BIDS_STROKE_CI_R=1) - re-runs tests/data/unpaired_reference.R.
# Debian/Ubuntu only. Never fails the build: without apt or root it says so and exits 0.
set -u
pkgs=(chromium poppler-utils fonts-dejavu-core)
[ "${BIDS_STROKE_CI_R:-0}" = 1 ] && pkgs+=(r-base-core)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
[ "${#missing[@]}" -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
    echo "ci-apt: no apt-get; not installing ${missing[*]} (their tests are skipped)" >&2
    exit 0
fi
run=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        run=(sudo -n)
    else
        echo "ci-apt: not root; not installing ${missing[*]} (their tests are skipped)" >&2
        exit 0
    fi
fi
export DEBIAN_FRONTEND=noninteractive
install=("${run[@]}" apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=300)
if ! "${install[@]}" "${missing[@]}"; then
    "${run[@]}" apt-get update -o DPkg::Lock::Timeout=300 && "${install[@]}" "${missing[@]}" \
        || echo "ci-apt: could not install ${missing[*]} (their tests are skipped)" >&2
fi
exit 0
