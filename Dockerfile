# syntax=docker/dockerfile:1
#
# bids_stroke BIDS-App container (fMRIPrep/MRIQC style).
#
#   CPU (default):  docker build -t bids_stroke:0.1.0 --build-arg VERSION=0.1.0 .
#   CUDA:           docker build -t bids_stroke:0.1.0-cuda \
#                       --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu124 .
#                   (pick the CUDA index that publishes TORCH_SPEC; run with --gpus all and
#                   `--device cuda`)
#   Run:            docker run --rm -v /data:/data:ro -v /out:/out bids_stroke:0.1.0 \
#                       /data /out participant --participant-label 01
#
# Everything Python goes through scripts/install.sh, the one install recipe shared with the
# Makefile and tests/test_containers.py (which runs the very same command in a fresh venv).
# Needs BuildKit (default since Docker 23) for the pip cache mount.

########################################################################################
# Stage 1: builder -- a self-contained venv in /opt/venv + the TemplateFlow templates
########################################################################################
FROM python:3.11-slim-bookworm AS builder

# torch is installed *first* from this spec/index so pip never resolves a bare `torch`
# to the multi-GB CUDA build of PyPI. Default: CPU wheel.
ARG TORCH_SPEC="torch==2.13.0"
ARG TORCH_INDEX_URL="https://download.pytorch.org/whl/cpu"

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    BIDS_STROKE_EDITABLE=0 \
    TEMPLATEFLOW_HOME=/opt/templateflow \
    TEMPLATEFLOW_AUTOUPDATE=0

WORKDIR /src
COPY . /src

# One RUN, one recipe: the same command tests/test_containers.py runs in a fresh venv.
RUN --mount=type=cache,target=/root/.cache/pip \
    python -m venv /opt/venv \
    && TORCH_INDEX_URL="${TORCH_INDEX_URL}" BIDS_STROKE_EDITABLE=0 \
       bash scripts/install.sh /opt/venv/bin/python "" "${TORCH_SPEC}"

# Pre-fetch MNI152NLin2009aSym (T1w + brain mask) so the image runs offline. When the build
# has no network, bids_stroke.templates installs nilearn's bundled MNI152NLin2009aSym
# stand-in under TemplateFlow's exact file names (and says so). Run outside /src so the
# installed package is imported, not the source tree.
WORKDIR /opt
RUN /opt/venv/bin/python -m bids_stroke.templates fetch \
    && chmod -R a+rX /opt/templateflow

########################################################################################
# Stage 2: runtime -- no compilers, no pip cache, non-root user
########################################################################################
FROM python:3.11-slim-bookworm AS runtime

ARG VERSION="0.1.0"
ARG BUILD_DATE=""
ARG VCS_REF=""

LABEL org.opencontainers.image.title="bids_stroke" \
      org.opencontainers.image.description="BIDS-App measuring how MRI spatial resolution changes stroke lesion segmentation" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.created="${BUILD_DATE}" \
      org.opencontainers.image.revision="${VCS_REF}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="bids_stroke developers" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11-slim-bookworm"

COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /opt/templateflow /opt/templateflow
COPY pipelines/ /opt/bids_stroke/pipelines/
COPY examples/plugins/ /opt/bids_stroke/plugins/

# Non-root user whose HOME is usable by *any* UID (docker run -u, Apptainer, OpenShift):
# the group/other permission bits copy the owner's (fMRIPrep pattern).
RUN useradd --create-home --home-dir /home/bids --shell /bin/bash --uid 1000 --user-group bids

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

# Warm matplotlib's font cache once, then make HOME writable for whatever UID runs it.
RUN mkdir -p "${MPLCONFIGDIR}" \
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
