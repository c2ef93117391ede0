"""Provenance of a run that is not the command line: the container it ran in (if any).

:func:`container_info` returns the BIDS ``GeneratedBy.Container`` object, or ``None`` when
bids_stroke does not run from a container image it can name: ``GeneratedBy.Container`` is then
left out instead of claiming a container with an empty tag. The command line itself is rendered
by the entry point (:mod:`bids_stroke.cli.command_line`) and travels in the settings.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["ENV_CONTAINER", "ENV_IMAGE", "container_info"]

ENV_CONTAINER = "BIDS_STROKE_CONTAINER"
"""Set by the Dockerfile (``docker``): this process runs from the bids_stroke image."""
ENV_IMAGE = "BIDS_STROKE_IMAGE"
"""Set by the Dockerfile: the image name and tag, e.g. ``bids_stroke:0.1.0``."""


def container_info(
    environ: Mapping[str, str] | None = None, *, root: str | Path = "/"
) -> dict[str, str] | None:
    """BIDS ``GeneratedBy.Container`` of this process, or ``None`` outside a named image.

    * Apptainer/Singularity (``APPTAINER_CONTAINER`` or ``SINGULARITY_CONTAINER`` set by the
      runtime): ``{"Type": "apptainer" | "singularity", "Tag": <image>}`` where the tag is
      ``BIDS_STROKE_IMAGE`` (inherited from the Docker image) or else the SIF file name.
    * The bids_stroke Docker image (``BIDS_STROKE_CONTAINER``, set by the Dockerfile):
      ``{"Type": "docker", "Tag": "bids_stroke:<version>"}``; ``podman`` when
      ``/run/.containerenv`` exists; ``Tag`` only when ``BIDS_STROKE_IMAGE`` is set.
    * Anything else, including a pip install inside some other container (``/.dockerenv``
      present but not our image, e.g. a CI runner or a development container): ``None``. Its
      image is unknown, so no container is claimed.
    """
    env = os.environ if environ is None else environ
    root = Path(root)
    image = env.get(ENV_IMAGE, "").strip()
    for var, kind in (("APPTAINER_CONTAINER", "apptainer"),
                      ("SINGULARITY_CONTAINER", "singularity")):
        sif = env.get(var, "").strip()
        if sif:
            return {"Type": kind, "Tag": image or os.path.basename(sif.rstrip("/")) or sif}
    kind = env.get(ENV_CONTAINER, "").strip()
    if not kind:
        return None
    if (root / "run" / ".containerenv").exists():
        kind = "podman"
    elif (root / ".dockerenv").exists():
        kind = "docker"
    info = {"Type": kind}
    if image:
        info["Tag"] = image
    return info
