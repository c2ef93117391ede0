"""Settings of one run, resolved from the command line and the pipeline file.

A single frozen-after-build :class:`RunConfig` is passed to the workflow factories and recorded
in the outputs (``logs/config-<uuid>.json``), so every derivative can be traced to the exact
settings that produced it.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bids_stroke.__about__ import __version__
from bids_stroke.pipeline import Pipeline

TEMPLATE = "MNI152NLin2009aSym"


class OutputDirError(RuntimeError):
    """The output or work folder is not acceptable (exit 73 or 64)."""

    def __init__(self, message: str, exit_code: int = 73) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class RunConfig:
    """Everything a participant/group run needs to know."""

    bids_dir: Path
    output_dir: Path
    work_dir: Path
    levels: list[str]
    pipeline: Pipeline
    conditions: list[str]
    participant_label: list[str] | None = None
    session_label: list[str] | None = None
    modality: str = "T1w"
    bids_filters: dict[str, dict] = field(default_factory=dict)
    derivatives: list[Path] = field(default_factory=list)
    database_dir: Path | None = None
    nprocs: int = 1
    omp_nthreads: int = 1
    mem_gb: float | None = None
    plugin: dict[str, Any] | None = None
    stop_on_first_crash: bool = False
    skip_bids_validation: bool = False
    model: Path | None = None
    device: str = "auto"
    precision: str = "auto"
    threshold: float = 0.5
    min_size: int = 0
    tta: bool = False
    inference_mode: str = "auto"
    registration: str = "affine"
    template_resolution: int = 1
    connectivity: int = 26
    tolerance_mm: float = 2.0
    save_degraded: bool = True
    save_degraded_masks: bool = False
    seed: int = 0
    run_uuid: str = field(default_factory=lambda: _run_uuid())
    version: str = __version__

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable settings (paths as strings)."""
        out = asdict(self)
        out["pipeline"] = self.pipeline.to_dict()
        return json.loads(json.dumps(out, default=str))

    def write(self, folder: Path) -> Path:
        """Record the settings as ``folder/config-<uuid>.json``."""
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"config-{self.run_uuid}.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")
        os.replace(tmp, path)
        return path


def _run_uuid() -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}_{uuid.uuid4().hex[:8]}"


def default_work_dir(output_dir: Path) -> Path:
    """A stable work folder outside both datasets, so a re-run resumes by default."""
    digest = hashlib.sha1(str(output_dir.resolve()).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / "bids_stroke_work" / digest


def is_within(path: Path, parent: Path) -> bool:
    """True when ``path`` is ``parent`` or below it (after resolving symlinks)."""
    try:
        path.resolve().relative_to(parent.resolve())
    except ValueError:
        return False
    return True


def check_output_dir(bids_dir: Path, output_dir: Path) -> None:
    """Refuse an output folder that would write into the input dataset.

    ``output_dir`` may be inside ``bids_dir`` only below ``bids_dir/derivatives/``.
    """
    if output_dir.resolve() == bids_dir.resolve():
        raise OutputDirError(
            f"output_dir {output_dir} is the BIDS dataset itself: choose another folder, "
            f"e.g. {bids_dir}/derivatives/bids_stroke",
            exit_code=64,
        )
    if is_within(output_dir, bids_dir) and not is_within(output_dir, bids_dir / "derivatives"):
        raise OutputDirError(
            f"output_dir {output_dir} is inside the BIDS dataset {bids_dir}: use a folder outside "
            f"it or {bids_dir}/derivatives/bids_stroke",
            exit_code=64,
        )


def ensure_writable_dir(path: Path, what: str) -> None:
    """Create ``path`` if needed and check it is writable (exit 73 otherwise)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputDirError(
            f"cannot create {what} {path} ({exc.strerror}): choose a writable folder"
        ) from exc
    if not os.access(path, os.W_OK | os.X_OK):
        raise OutputDirError(
            f"{what} {path} is not writable: fix its permissions or choose another folder"
        )


def environment_info() -> dict[str, str]:
    """Versions recorded in provenance."""
    info = {"bids_stroke": __version__, "python": platform.python_version()}
    for mod in ("torch", "numpy", "scipy", "nibabel", "nipype", "bids"):
        try:
            module = __import__(mod)
            info[mod] = str(getattr(module, "__version__", "unknown"))
        except ImportError:  # pragma: no cover - all are dependencies
            continue
    return info


def container_info() -> dict[str, str]:
    """How the app runs: docker, apptainer/singularity or a plain Python environment."""
    if os.environ.get("APPTAINER_CONTAINER") or os.environ.get("SINGULARITY_CONTAINER"):
        return {"Type": "singularity", "Tag": os.environ.get("BIDS_STROKE_IMAGE", "")}
    if Path("/.dockerenv").exists():
        return {"Type": "docker", "Tag": os.environ.get("BIDS_STROKE_IMAGE", "")}
    return {"Type": "python", "Tag": platform.python_version()}
