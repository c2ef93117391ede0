# syntax=docker/dockerfile:1
#
# bids_stroke BIDS-App container (fMRIPrep/MRIQC style).
#
#   CPU (default):  docker build -t bids_stroke:0.1.0 --build-arg VERSION=0.1.0 .
#   CUDA:           docker build -t bids_stroke:0.1.0-cuda \
#                       --build-arg LOCK=requirements/lock-cuda.txt --build-arg TORCH_INDEX_URL= .
#                   (run with --gpus all and `--device cuda`)
#   Run:            docker run --rm -v /data:/data:ro -v /out:/out bids_stroke:0.1.0 \
#                       /data /out participant --participant-label 01
#
# Python packages come from a hashed lock file (requirements/, `make lock`) through
# scripts/install.sh, the one install recipe shared with the Makefile and the Apptainer
# definition. Dependencies are installed before the source is copied, so a code change
# rebuilds only the last layers. tests/test_image_build.py builds and runs this very file
# (buildah, from a local Debian base: see docs/containers.md).
# The build fails when TemplateFlow's files cannot be fetched, unless
# --build-arg ALLOW_TEMPLATE_STANDIN=1 (then the image holds nilearn's stand-in, always, and
# its labels say so). Needs BuildKit (default since Docker 23) for the pip cache mount.

# Any Debian-based image with python3.11 + venv as `python` (the test uses a local mmdebstrap
# base); the default is the official Python image.
ARG BASE_IMAGE=python:3.11-slim-bookworm

########################################################################################
# Stage 1: builder -- a self-contained venv in /opt/venv + the TemplateFlow templates
########################################################################################
FROM ${BASE_IMAGE} AS builder

# LOCK: hashed lock file to install. Default: CPU torch with the nnunet and onnx extras, so the
# image runs users' nnU-Net v2 folders and ONNX files (lock.txt: without them, ~0.5 GB
# smaller; lock-cuda.txt: PyPI's CUDA torch, with the same extras).
# TORCH_INDEX_URL: extra index that offers the locked torch (PyTorch's CPU wheels).
# WHEELHOUSE: folder or URL of wheels to install from *instead of* any index (air-gapped
# builders; the hashes of the lock file still apply).
ARG LOCK="requirements/lock-nnunet-onnx.txt"
ARG TORCH_INDEX_URL="https://download.pytorch.org/whl/cpu"
ARG WHEELHOUSE=""

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PIP_NO_WARN_SCRIPT_LOCATION=1 \
    TEMPLATEFLOW_HOME=/opt/templateflow \
    TEMPLATEFLOW_AUTOUPDATE=0

WORKDIR /src

# 1) Dependencies only: this layer is reused until the lock file or the recipe changes.
COPY requirements/ /src/requirements/
COPY scripts/install.sh /src/scripts/install.sh
RUN --mount=type=cache,target=/root/.cache/pip \
    python -m venv /opt/venv \
    && BIDS_STROKE_INSTALL=deps BIDS_STROKE_LOCK="/src/${LOCK}" \
       TORCH_INDEX_URL="${TORCH_INDEX_URL}" BIDS_STROKE_WHEELHOUSE="${WHEELHOUSE}" \
       bash scripts/install.sh /opt/venv/bin/python ""

# 2) The package itself: no resolution, no download (--no-deps --no-build-isolation).
COPY . /src
RUN BIDS_STROKE_INSTALL=package BIDS_STROKE_EDITABLE=0 BIDS_STROKE_LOCK="/src/${LOCK}" \
    bash scripts/install.sh /opt/venv/bin/python ""

# 3) MNI152NLin2009aSym (T1w + brain mask) so the image runs offline. ALLOW_TEMPLATE_STANDIN=0:
# TemplateFlow's files or a failed build; 1: nilearn's bundled stand-in under TemplateFlow's
# names, never a mix (so two images with the same build arguments hold the same template).
# Run outside /src so the installed package is imported, not the source tree.
ARG ALLOW_TEMPLATE_STANDIN=0
WORKDIR /opt
RUN case "${ALLOW_TEMPLATE_STANDIN}" in \
        0) /opt/venv/bin/python -m bids_stroke.templates fetch --no-standin ;; \
        1) BIDS_STROKE_OFFLINE=1 /opt/venv/bin/python -m bids_stroke.templates fetch ;; \
        *) echo "ALLOW_TEMPLATE_STANDIN must be 0 or 1" >&2; exit 64 ;; \
    esac \
    && chmod -R a+rX /opt/templateflow

########################################################################################
# Stage 2: runtime -- no compilers, no pip cache, non-root user
########################################################################################
FROM ${BASE_IMAGE} AS runtime

ARG BASE_IMAGE
ARG VERSION="0.1.0"
ARG BUILD_DATE=""
ARG VCS_REF=""
ARG ALLOW_TEMPLATE_STANDIN=0
ARG LOCK="requirements/lock-nnunet-onnx.txt"

# org.bids_stroke.template.standin: 0 = TemplateFlow's files, 1 = nilearn's stand-in
# (`python -m bids_stroke.templates info` in the image prints the same).
LABEL org.opencontainers.image.title="bids_stroke" \
      org.opencontainers.image.description="BIDS-App measuring how MRI spatial resolution changes stroke lesion segmentation" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.created="${BUILD_DATE}" \
      org.opencontainers.image.revision="${VCS_REF}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="bids_stroke developers" \
      org.opencontainers.image.base.name="${BASE_IMAGE}" \
      org.bids_stroke.lock="${LOCK}" \
      org.bids_stroke.template="MNI152NLin2009aSym" \
      org.bids_stroke.template.standin="${ALLOW_TEMPLATE_STANDIN}"

COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /opt/templateflow /opt/templateflow
COPY pipelines/ /opt/bids_stroke/pipelines/
COPY examples/plugins/ /opt/bids_stroke/plugins/

ENV PATH="/opt/venv/bin:${PATH}" \
    HOME="/home/bids" \
    TEMPLATEFLOW_HOME="/opt/templateflow" \
    TEMPLATEFLOW_AUTOUPDATE=0 \
    OMP_NUM_THREADS=1 \
    MKL_NUM_THREADS=1 \
    OPENBLAS_NUM_THREADS=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    NIPYPE_NO_ET=1 \
    MPLCONFIGDIR="/home/bids/.config/matplotlib" \
    BIDS_STROKE_CONTAINER=docker \
    BIDS_STROKE_IMAGE="bids_stroke:${VERSION}"

# Non-root user whose HOME is usable by *any* UID (docker run -u, Apptainer, OpenShift): the
# group/other permission bits copy the owner's (fMRIPrep pattern). Warm matplotlib's font
# cache once and check the entry point, in one layer.
RUN useradd --create-home --home-dir /home/bids --shell /bin/bash --uid 1000 --user-group bids \
    && mkdir -p "${MPLCONFIGDIR}" \
    && python -c "import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot" \
    && bids_stroke --version \
    && chown -R bids:bids "${HOME}" \
    && chmod -R go=u "${HOME}"

# Numeric UID:GID of `bids` so runtimes that enforce runAsNonRoot can verify it.
USER 1000:1000
WORKDIR /home/bids

# A batch BIDS-App, not a service: there is nothing to probe between start and exit, and a
# probe would only add load on HPC nodes.
HEALTHCHECK NONE

ENTRYPOINT ["bids_stroke"]
CMD ["--help"]
