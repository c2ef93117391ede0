"""What a committed image was made from, so that an unchanged re-run rewrites nothing (pure).

The participant level plans every image before it builds any graph: an image whose
committed manifest carries the :func:`image_fingerprint` this run would record, and whose
committed files all still have their recorded sha256 (:func:`verify_committed`), is *cached*:
it is not recomputed, not rewritten, and counted as cached in the run's summary.

The fingerprint digests everything that decides an image's outputs:

* the content (sha256) of its input files: the image, its lesion mask, the model's other
  channels and the image's JSON sidecar (read into the outputs' sidecars);
* :meth:`Settings.results_key` (registration, segmentation and metric settings, the seed),
  the model's checksum and how the run uses it (space, grid, threshold, channels);
* the study's conditions in their order and the output settings (which files are written:
  degraded images, degraded masks, the probability-map encoding);
* the template files (their sha256) for template-space models, the run's warnings (they are
  written into every sidecar) and the versions of this fingerprint and of bids_stroke.

The manifest stores the fingerprint under ``extra["fingerprint"]``; manifests without one
(older versions, ``bids_stroke score``) are never cached.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bids_stroke.__about__ import __version__
from bids_stroke.core.digest import file_sha256

if TYPE_CHECKING:
    from bids_stroke.core.settings import Settings
    from bids_stroke.inputs.discovery import ImageInputs
    from bids_stroke.outputs.commit import Manifest

__all__ = ["EXTRA_KEY", "FORMAT", "image_fingerprint", "input_digests", "input_files",
           "verify_committed"]

#: bump when the outputs of unchanged inputs and settings change (a new output encoding...)
FORMAT = 1
#: key of the fingerprint in a subject manifest's ``extra``
EXTRA_KEY = "fingerprint"


def _sidecar(image: Path) -> Path:
    name = image.name
    stem = name[: -len(".nii.gz")] if name.endswith(".nii.gz") else Path(name).stem
    return image.with_name(f"{stem}.json")


def input_files(subject: ImageInputs) -> dict[str, Path]:
    """The files of an input whose content decides its outputs, by role."""
    files = {"image": Path(subject.image)}
    if subject.mask is not None:
        files["mask"] = Path(subject.mask)
    for suffix, path, _ in subject.channels:
        files[f"channel:{suffix}"] = Path(path)
    sidecar = _sidecar(Path(subject.image))
    if sidecar.is_file():
        files["sidecar"] = sidecar
    return files


def input_digests(subject: ImageInputs) -> dict[str, dict[str, Any]]:
    """Each input file (by role) with its sha256, size and modification time (ns): read
    once per run, for the fingerprint and for the work folder's record of its inputs.
    Raises ``OSError`` when a file cannot be read."""
    digests = {}
    for role, path in input_files(subject).items():
        st = path.stat()
        digests[role] = {"path": str(path), "sha256": file_sha256(path), "size": st.st_size,
                         "mtime_ns": st.st_mtime_ns}
    return digests


def image_fingerprint(subject: ImageInputs, settings: Settings, *,
                      digests: Mapping[str, Mapping[str, Any]], model_sha256: str,
                      model_use: Mapping[str, Any], template: Mapping[str, str] | None,
                      warnings: Sequence[str]) -> str:
    """The 64-hex digest of what decides ``subject``'s outputs (see the module docstring).

    ``digests``: :func:`input_digests` of ``subject``; ``model_use``: how the run uses the
    model (space, resolution, threshold, channels); ``template``: sha256 of the template
    files by name (``None`` for native-space models).
    """
    content = {
        "format": FORMAT,
        "bids_stroke": __version__,
        "inputs": {role: d["sha256"] for role, d in digests.items()},
        "results_key": settings.results_key(),
        "model": {"sha256": model_sha256, **dict(model_use)},
        "conditions": [c.spec for c in settings.study.conditions],
        "outputs": {"save_degraded": settings.outputs.save_degraded,
                    "save_degraded_masks": settings.outputs.save_degraded_masks,
                    "save_probseg": settings.outputs.save_probseg},
        "template": dict(template) if template is not None else None,
        "warnings": list(warnings),
    }
    blob = json.dumps(content, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()


def verify_committed(out: Path, manifest: Manifest | None, fingerprint: str,
                     labels: Sequence[str], *, files: bool = True) -> str | None:
    """``None`` when ``manifest`` is a commit of exactly this fingerprint with exactly the
    condition ``labels`` and (``files``) every file it lists has its recorded size and
    sha256; else why the image is redone."""
    from bids_stroke.outputs.commit import verify_file

    if manifest is None:
        return "not committed"
    if manifest.extra.get(EXTRA_KEY) != fingerprint:
        return "inputs, settings or model changed"
    if set(manifest.conditions) != set(labels):
        return "other conditions committed"
    for rel in sorted(manifest.files) if files else ():
        problem = verify_file(out, manifest, rel)
        if problem is not None:
            return problem
    return None
