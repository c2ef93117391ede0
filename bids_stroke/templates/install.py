"""``fetch``: populate TEMPLATEFLOW_HOME (TemplateFlow download, else the labelled stand-in).

Its command line, ``python -m bids_stroke.templates {fetch,info}``, is
:mod:`bids_stroke.cli.templates`."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from bids_stroke.core.atomic import atomic_copy, atomic_write_json
from bids_stroke.core.digest import file_sha256
from bids_stroke.templates.resolve import (
    DEFAULT_TEMPLATE,
    STANDIN_MARKER,
    TemplateError,
    cache_dir,
    clear_cache,
    is_offline,
    is_valid_nifti,
    local_file,
    read_marker,
    templateflow_home,
)
from bids_stroke.templates.standin import STANDIN_NOTE, standin_file, templateflow_filename

LOGGER = logging.getLogger("bids_stroke.templates")
#: The files bids_stroke needs from a template: (suffix, desc).
NEEDED = (("T1w", None), ("mask", "brain"))


def templateflow_timeout() -> int:
    """Network timeout (s) given to TemplateFlow (``BIDS_STROKE_TEMPLATEFLOW_TIMEOUT``, 10)."""
    text = os.environ.get("BIDS_STROKE_TEMPLATEFLOW_TIMEOUT", "10")
    try:
        return max(1, int(float(text)))
    except ValueError:
        raise TemplateError(f"BIDS_STROKE_TEMPLATEFLOW_TIMEOUT must be a number of seconds, "
                            f"got {text!r}") from None


def templateflow_client(home: Path) -> Any:
    """TemplateFlow's client rooted at ``home`` (its layout is indexed on first use)."""
    from templateflow import TemplateFlowClient

    return TemplateFlowClient(root=home, autoupdate=False, timeout=templateflow_timeout())


def download(client: Any, template: str, suffix: str, desc: str | None) -> Path | None:
    """``client.get(...)`` (a download for an empty placeholder); the valid file, or None
    when TemplateFlow cannot provide it (logged)."""
    import requests

    try:
        got = client.get(template, resolution=1, suffix=suffix, desc=desc,
                         extension=".nii.gz")
    except (requests.RequestException, RuntimeError, OSError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        LOGGER.info("TemplateFlow could not provide tpl-%s %s%s: %s: %s", template,
                    f"desc-{desc} " if desc else "", suffix, type(exc).__name__, first)
        return None
    paths = [got] if isinstance(got, Path) else [Path(p) for p in got]
    valid = [p for p in paths if is_valid_nifti(p)]
    return valid[0] if len(valid) == 1 else None


def _fetch_one(home: Path, client: Any, template: str, suffix: str, desc: str | None,
               marker: dict[str, Any], allow_standin: bool = True) -> tuple[str, str]:
    """Make one file real under ``home``; returns (file name, source)."""
    found = local_file(home, template, suffix, desc, 1)
    if found is not None and found.source == "templateflow":
        marker.pop(found.path.name, None)
        return found.path.name, "templateflow"
    if client is not None:
        if found is not None:  # a stand-in: empty it so that TemplateFlow downloads the file
            found.path.write_bytes(b"")
        got = download(client, template, suffix, desc)
        if got is not None:
            marker.pop(got.name, None)
            return got.name, "templateflow"
    name = templateflow_filename(template, suffix, desc, 1)
    if not allow_standin:
        raise TemplateError(
            f"cannot fetch {name} from TemplateFlow (no network, or its server unreachable) "
            "and stand-ins are not allowed: build with network, or allow nilearn's stand-in "
            "(Docker: --build-arg ALLOW_TEMPLATE_STANDIN=1)")
    standin = standin_file(template, suffix, desc, cache_dir())
    if standin is None:
        raise TemplateError(f"cannot fetch {name} and no stand-in exists for it")
    target = atomic_copy(standin, home / f"tpl-{template}" / name)
    marker[name] = {"size": target.stat().st_size, "sha256": file_sha256(target),
                    "source": standin.name}
    return name, "nilearn-standin"


def fetch(dest: str | os.PathLike[str] | None = None, template: str = DEFAULT_TEMPLATE, *,
          allow_standin: bool = True) -> dict[str, str]:
    """Populate ``dest`` (default ``TEMPLATEFLOW_HOME``) with the template T1w and brain mask.

    TemplateFlow is asked first (unless ``BIDS_STROKE_OFFLINE=1``); a file it cannot provide
    is replaced by the nilearn stand-in copied under TemplateFlow's exact name and listed in
    ``tpl-<template>/.bids_stroke-standin.json`` — unless ``allow_standin`` is false: then
    :class:`TemplateError` is raised (image builds that must hold TemplateFlow's real files).
    Returns ``{file name: source}``.
    """
    home = Path(dest).absolute() if dest is not None else templateflow_home()
    folder = home / f"tpl-{template}"
    marker = read_marker(folder)
    client = None if is_offline() else templateflow_client(home)
    report = dict(_fetch_one(home, client, template, suffix, desc, marker, allow_standin)
                  for suffix, desc in NEEDED)
    marker_path = folder / STANDIN_MARKER
    if marker:
        atomic_write_json(marker_path, {"note": STANDIN_NOTE, "files": marker})
    elif marker_path.exists():
        marker_path.unlink()
    clear_cache()
    return report
