"""Record and verify the checksums of a node's output files in the nipype work folder.

Every bids_stroke interface derives from :class:`ChecksummedInterface`: after it runs, the
sha256 of each output file inside its working directory is written to
``_outputs.sha256.json`` there. Before a run, :func:`bids_stroke.runner.scan_work_dir`
re-checks them with :func:`verify_outputs` and drops node folders whose files changed, so a
cached result that was corrupted on disk is recomputed, never copied into the outputs.
"""

from __future__ import annotations

import json
from pathlib import Path

from nipype.interfaces.base import SimpleInterface

from bids_stroke.core.atomic import atomic_write_text
from bids_stroke.core.digest import file_sha256

CHECKSUMS = "_outputs.sha256.json"


def output_paths(value: object) -> list[str]:
    """The strings inside a node's output value (nested lists, tuples and dicts): the paths
    of its files, among other text."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [f for v in value for f in output_paths(v)]
    if isinstance(value, dict):
        return [f for v in value.values() for f in output_paths(v)]
    return []


def record_outputs(cwd: Path, results: dict) -> None:
    """Write the checksums of the files of ``results`` that live inside ``cwd``."""
    cwd = Path(cwd).resolve()
    sums = {}
    for name in sorted({f for v in results.values() for f in output_paths(v)}):
        path = Path(name)
        if path.is_file() and path.resolve().is_relative_to(cwd):
            sums[path.resolve().relative_to(cwd).as_posix()] = file_sha256(path)
    # atomic (a new file renamed into place): never written through a planted link
    atomic_write_text(cwd / CHECKSUMS, json.dumps(sums, indent=1, sort_keys=True) + "\n")


def verify_outputs(node_dir: Path) -> str | None:
    """``None`` when every recorded output of ``node_dir`` is intact, else the reason."""
    record = Path(node_dir) / CHECKSUMS
    if not record.is_file():
        return None  # written by an interface that does not record (nipype's own)
    try:
        sums = json.loads(record.read_text())
    except (OSError, ValueError):
        return "its checksum record is unreadable"
    for rel, digest in sums.items():
        path = Path(node_dir) / rel
        if not path.is_file():
            return f"{rel} is missing"
        if file_sha256(path) != digest:
            return f"{rel} changed since it was computed"
    return None


class ChecksummedInterface(SimpleInterface):
    """A :class:`SimpleInterface` that records its output files' checksums."""

    def aggregate_outputs(self, runtime=None, needed_outputs=None):
        from bids_stroke.outputs.commit import fault

        fault(f"node-{type(self).__name__}")  # tests: a signal inside a running node
        outputs = super().aggregate_outputs(runtime, needed_outputs)
        if runtime is not None and getattr(runtime, "cwd", None):
            record_outputs(Path(runtime.cwd), dict(self._results))
        return outputs
