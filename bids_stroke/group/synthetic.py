"""Synthetic participant-level derivatives for tests, benchmarks and demos of the group level.

Writes the same files as the participant workflow (``*_label-L_segmetrics.tsv``,
``*_label-L_lesions.tsv``, ``descriptions.tsv``) with plausible, seeded values: Dice falls with
coarser effective resolution, more so for small lesions. Not used by the analysis itself.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bids_stroke.core.settings import TEMPLATE
from bids_stroke.group.collect import (
    LESION_COLUMNS,
    METRIC_COLUMNS,
    SEGMETRICS_ID_COLUMNS,
    image_id,
)

__all__ = ["DEFAULT_SYNTHETIC_CONDITIONS", "make_synthetic_output", "record_commits"]

#: (desc, spec, effective resolution in mm, description)
DEFAULT_SYNTHETIC_CONDITIONS: tuple[tuple[str, str, float, str], ...] = (
    ("native", "native", 1.0, "Native 1 mm isotropic image."),
    ("crude2", "crude:2", 2.0, "Every 2nd voxel kept (2 mm isotropic, nearest neighbour)."),
    ("linear2", "linear:2", 2.0, "Linear resampling to 2 mm isotropic and back."),
    ("crude3", "crude:3", 3.0, "Every 3rd voxel kept (3 mm isotropic)."),
    ("thick5mm", "thick:5", 1.71, "5 mm thick axial slices."),
    ("kspace4", "kspace:4", 4.0, "k-space truncation to 4 mm resolution."),
)


def record_commits(output_dir: str | os.PathLike[str], *, model_sha256: str = "synthetic",
                   warnings: Sequence[str] = ()) -> None:
    """Record every subject's tables as committed where the commit protocol exists.

    With ``bids_stroke.outputs.commit`` the group level reads only subjects with a manifest whose
    checksums match; call this after editing synthetic tables by hand. Without that module
    every table is read and nothing is done. ``model_sha256`` is the model recorded for every
    condition, ``warnings`` the participant-level warnings recorded for every subject.
    """
    try:
        from bids_stroke.core.atomic import atomic_write_json
        from bids_stroke.core.digest import file_sha256
        from bids_stroke.outputs import commit
    except ImportError:
        return
    root = Path(output_dir)
    subjects: dict[str, list[Path]] = {}
    for f in sorted(root.glob("sub-*/**/*_label-L_*.tsv")):
        subjects.setdefault(image_id(f), []).append(f)
    for key, paths in subjects.items():
        rels = [p.relative_to(root).as_posix() for p in paths]
        tables = {Path(rel).name.rsplit("_", 1)[-1].split(".")[0]: rel for rel in rels}
        if (root / f"{key}.html").is_file():  # its subject page (make_synthetic_output)
            rels.append(f"{key}.html")
        files = {rel: {"sha256": file_sha256(root / rel),
                       "size": (root / rel).stat().st_size, "conditions": []} for rel in rels}
        seg = next(p for p in paths if p.name.endswith("_segmetrics.tsv"))
        rows = [line.split("\t") for line in seg.read_text().splitlines()]
        col = {name: i for i, name in enumerate(rows[0])}
        records = {r[col["desc"]]: commit.ConditionRecord(
            label=r[col["desc"]], spec=r[col["condition"]], model_sha256=model_sha256,
            results_key="synthetic", run_uuid="synthetic") for r in rows[1:]}
        manifest = commit.Manifest(key=key, files=files, conditions=records, tables=tables,
                                   run_uuid="synthetic",
                                   extra={"warnings": list(warnings)} if warnings else {})
        atomic_write_json(commit.manifest_path(root, key), manifest.to_dict())


def _subject_page(root: Path, key: str, table: Path) -> None:
    """The synthetic subject page of one image: its metric table (no images to overlay)."""
    import pandas as pd

    from bids_stroke.reports import html as H

    df = pd.read_csv(table, sep="\t", na_values=["n/a"], keep_default_na=False)
    (root / f"{key}.html").write_text(H.page(
        f"bids_stroke report: {key} (synthetic)",
        H.paragraph("Synthetic participant-level output: metrics only.", cls="note")
        + H.table_html(df, caption=table.name, table_id="metrics")))


def _fmt(v: np.ndarray) -> np.ndarray:
    out = np.char.mod("%.6g", v)
    return np.where(np.isfinite(v), out, "n/a")


def make_synthetic_output(
    output_dir: str | os.PathLike[str],
    n_subjects: int = 20,
    *,
    conditions: Sequence[tuple[str, str, float, str]] = DEFAULT_SYNTHETIC_CONDITIONS,
    seed: int = 0,
    sessions: Sequence[str] | None = None,
    lesions: bool = True,
    voxel_ml: float = 0.001,
    columns: Sequence[str] = METRIC_COLUMNS,
    reports: bool = False,
) -> Path:
    """Write synthetic per-subject metric TSVs under ``output_dir`` and return it.

    Parameters
    ----------
    output_dir : path
        Output directory (created).
    n_subjects : int
        Number of participants ``sub-0001`` ...
    conditions : sequence of (desc, spec, effective_resolution_mm, description)
        Conditions; the first is the reference-quality one.
    seed : int
        Seed of the generator (results are fully deterministic).
    sessions : sequence of str, optional
        Session labels; None = no session level (``session_id`` = ``n/a``).
    lesions : bool
        Also write ``*_label-L_lesions.tsv``.
    voxel_ml : float
        Voxel volume used to convert volumes to voxel counts.
    columns : sequence of str
        Metric columns to write (default: all; leave out optional ones to mimic older outputs).
    reports : bool
        Also write a subject page per image at the top of ``output_dir`` (``<image>.html``,
        listed in its manifest like a participant-level report): its metric table, so that
        the group report's links have somewhere to go.
    """
    root = Path(output_dir)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    k = len(conditions)
    res = np.array([c[2] for c in conditions], float)
    columns = [c for c in METRIC_COLUMNS if c in set(columns)]
    header_seg = "\t".join([*SEGMETRICS_ID_COLUMNS, *columns]) + "\n"
    header_les = "\t".join(LESION_COLUMNS) + "\n"
    sess_list: list[str | None] = list(sessions) if sessions else [None]
    for i in range(1, n_subjects + 1):
        sub = f"sub-{i:04d}"
        for ses in sess_list:
            n_les = int(rng.integers(1, 5))
            les_vol = np.exp(rng.normal(0.5, 1.6, n_les))  # ml, lognormal
            ref = float(les_vol.sum())
            size_eff = 1.0 / (1.0 + 3.0 / (ref + 0.5))
            base = np.clip(rng.normal(0.55 + 0.3 * size_eff, 0.08), 0.05, 0.97)
            dice = np.clip(base - 0.06 * (res - 1) * (1.3 - size_eff)
                           + rng.normal(0, 0.03, k), 0.0, 1.0)
            pred = ref * np.exp(rng.normal(0.05 * (res - 1), 0.25, k))
            tp = dice * (ref + pred) / 2.0
            fp, fn = np.maximum(pred - tp, 0), np.maximum(ref - tp, 0)
            tpv, fpv, fnv = (np.round(x / voxel_ml) for x in (tp, fp, fn))
            tn = np.full(k, 7_000_000.0) - tpv - fpv - fnv
            prec = tpv / np.maximum(tpv + fpv, 1)
            rec = tpv / np.maximum(tpv + fnv, 1)
            hd95 = np.abs(rng.normal(4 + 2.5 * res * (1.2 - dice), 1.5))
            hd95[dice == 0] = np.nan
            det = rng.random((k, n_les)) < (0.5 + 0.45 * size_eff - 0.05 * (res[:, None] - 1))
            det &= (les_vol > 0.05)[None, :]
            ltp = det.sum(1).astype(float)
            lfp = rng.poisson(0.3 * res).astype(float)
            lfn = n_les - ltp
            f1 = 2 * ltp / np.maximum(2 * ltp + lfp + lfn, 1)
            cols = {
                "tp": tpv, "fp": fpv, "fn": fnv, "tn": tn, "dice": dice,
                "jaccard": dice / (2 - dice), "precision": prec, "recall": rec,
                "specificity": tn / (tn + fpv), "accuracy": (tpv + tn) / 7e6,
                "balanced_accuracy": (rec + tn / (tn + fpv)) / 2,
                "mcc": np.sqrt(prec * rec) * 0.99, "ref_volume_ml": np.full(k, ref),
                "pred_volume_ml": pred, "volume_diff_ml": pred - ref,
                "abs_volume_diff_ml": np.abs(pred - ref),
                "abs_volume_diff_voxels": np.round(np.abs(pred - ref) / voxel_ml),
                "rel_volume_diff": (pred - ref) / ref, "volume_ratio": pred / ref,
                "hd": hd95 * 1.6, "hd95": hd95, "assd": hd95 / 3.0,
                "surface_dice": np.clip(dice + 0.05, 0, 1),
                "distances_undefined": np.isnan(hd95).astype(float),
                "ref_lesion_count": np.full(k, float(n_les)),
                "pred_lesion_count": ltp + lfp, "abs_lesion_count_diff": np.abs(ltp + lfp - n_les),
                "lesion_tp": ltp, "lesion_fp": lfp, "lesion_fn": lfn, "lesion_f1": f1,
                "detection_rate": ltp / n_les, "grid_voxels": np.full(k, 7e6),
                "pred_fraction_pct": (tpv + fpv) / 7e6 * 100,
            }
            sid = "n/a" if ses is None else f"ses-{ses}"
            rows = [[sub, sid, c[0], c[1], f"{c[2]:g}"] for c in conditions]
            mat = np.column_stack([_fmt(np.asarray(cols[m], float)) for m in columns])
            body = "".join("\t".join([*r, *m]) + "\n" for r, m in zip(rows, mat, strict=True))
            adir = root / sub / (f"ses-{ses}" if ses else "") / "anat"
            adir.mkdir(parents=True, exist_ok=True)
            prefix = f"{sub}{f'_ses-{ses}' if ses else ''}_space-{TEMPLATE}"
            (adir / f"{prefix}_label-L_segmetrics.tsv").write_text(header_seg + body)
            if reports:
                _subject_page(root, f"{sub}{f'_ses-{ses}' if ses else ''}",
                              adir / f"{prefix}_label-L_segmetrics.tsv")
            if lesions:
                ov = np.clip(det * rng.uniform(0.2, 1.0, det.shape), 0, 1)
                lines = [
                    "\t".join([sub, sid, c[0], c[1], str(j + 1), f"{les_vol[j]:.6g}",
                               str(round(float(les_vol[j]) / voxel_ml)), str(int(det[ci, j])),
                               f"{ov[ci, j]:.4g}"]) + "\n"
                    for ci, c in enumerate(conditions) for j in range(n_les)]
                (adir / f"{prefix}_label-L_lesions.tsv").write_text(header_les + "".join(lines))

    desc_lines = "".join(f"{c[0]}\t{c[3]}\n" for c in conditions)
    (root / "descriptions.tsv").write_text("desc\tdescription\n" + desc_lines)
    record_commits(root)
    return root
