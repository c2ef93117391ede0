"""Descriptive tables of the per-image metric rows: units, summaries, lesion-size strata.

All functions are pure: data frames in, new data frames out.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from itertools import pairwise

import numpy as np
import pandas as pd

from bids_stroke.core.settings import GroupSettings
from bids_stroke.group.bootstrap import Means, Ratio, bootstrap_units

__all__ = [
    "DEFAULT_SIZE_BINS_ML",
    "GROUP_UNITS",
    "ID_COLUMNS",
    "aggregate_units",
    "condition_means",
    "id_columns",
    "lesion_detection_by_size",
    "size_bin_labels",
    "size_bin_summary",
    "summarize",
    "to_wide",
]

DEFAULT_SIZE_BINS_ML: tuple[float, ...] = (1.0, 10.0, 50.0)
ID_COLUMNS: tuple[str, ...] = ("dataset", "participant_id", "session_id", "image_id")
#: statistical unit of the group level: one value per participant (default) or per image
GROUP_UNITS: tuple[str, ...] = ("participant", "image")
_SUMMARY_STATS = ("n", "mean", "std", "min", "q1", "median", "q3", "iqr", "max")


def id_columns(table: pd.DataFrame) -> list[str]:
    """The identifier columns present in ``table`` (``image_id`` tells runs/acquisitions of
    one subject-session apart; ``dataset`` datasets compared; hand-made frames may lack them)."""
    return [c for c in ID_COLUMNS if c in table.columns]


def aggregate_units(
    table: pd.DataFrame, metrics: Sequence[str], unit: str = GroupSettings.unit,
) -> pd.DataFrame:
    """One row per statistical unit and condition.

    ``unit="image"`` returns ``table`` unchanged (every segmented image is a unit).
    ``unit="participant"`` averages the metric values of a participant's images (sessions,
    runs) per condition: the mean of the images with a finite value (NaN when none has one).
    ``session_id`` and ``image_id`` become ``n/a`` and the participant label; ``n_images``
    counts the images averaged.
    """
    if unit not in GROUP_UNITS:
        raise ValueError(f"group unit must be one of {GROUP_UNITS}, got {unit!r}")
    if unit == "image":
        return table
    keys = [c for c in ("dataset", "participant_id") if c in table.columns] + ["desc"]
    if not table.duplicated(keys).any():  # one image per participant: nothing to average
        return table.assign(n_images=1)
    t = table.copy()
    t[list(metrics)] = t[list(metrics)].astype(float).replace([np.inf, -np.inf], np.nan)
    g = t.groupby(keys, sort=False, dropna=False)
    out = g[list(metrics)].mean()  # pandas' mean skips NaN
    out["n_images"] = g.size()
    extra = [c for c in ("condition", "effective_resolution_mm") if c in t.columns]
    if extra:
        out = out.join(g[extra].first())
    out = out.reset_index()
    out["session_id"] = "n/a"
    out["image_id"] = out["participant_id"]
    return out


def to_wide(table: pd.DataFrame, metric: str, conditions: Sequence[str]) -> pd.DataFrame:
    """Pivot one metric to a unit x condition frame (NaN if missing).

    Duplicated unit/condition rows raise ``ValueError``.
    """
    keys = [*id_columns(table), "desc"]
    if table.duplicated(keys).any():
        dup = table.loc[table.duplicated(keys), keys].iloc[0].tolist()
        raise ValueError(f"duplicated subject/session/condition row: {dup}")
    wide = table.pivot(index=id_columns(table), columns="desc", values=metric)
    return wide.reindex(columns=list(conditions)).astype(float)


def summarize(
    table: pd.DataFrame, metrics: Sequence[str], by: Sequence[str] = ("desc",),
) -> pd.DataFrame:
    """Descriptive statistics per group and metric (non-finite values ignored).

    One row per (``by`` groups..., metric) with ``n, mean, std`` (ddof=1), ``min, q1, median,
    q3, iqr, max`` (quartiles by linear interpolation). Group order follows first appearance.
    Every metric of a group is summarised at once (NumPy along the rows).
    """
    by, metrics = list(by), list(metrics)
    values = np.array(table[metrics].to_numpy(dtype=float))  # a copy: NaN for non-finite
    values[~np.isfinite(values)] = np.nan
    groups = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN or single-value columns
        for key, idx in table.groupby(by, sort=False, observed=True).indices.items():
            x = values[idx]
            n = np.isfinite(x).sum(axis=0)
            q1, med, q3 = np.nanpercentile(x, [25, 50, 75], axis=0)
            cols = {"n": n, "mean": np.nanmean(x, axis=0),
                    "std": np.where(n > 1, np.nanstd(x, axis=0, ddof=1), np.nan),
                    "min": np.nanmin(x, axis=0), "q1": q1, "median": med, "q3": q3,
                    "iqr": q3 - q1, "max": np.nanmax(x, axis=0)}
            groups.append((key if isinstance(key, tuple) else (key,), cols))
    rows = [(*keys, m, *(cols[c][j] for c in _SUMMARY_STATS))  # metric-major, as pandas' melt
            for j, m in enumerate(metrics) for keys, cols in groups]
    out = pd.DataFrame(rows, columns=[*by, "metric", *_SUMMARY_STATS])
    out["n"] = out["n"].astype(int)
    return out


def size_bin_labels(edges_ml: Sequence[float]) -> list[str]:
    """Labels of lesion-volume bins for inner edges, e.g. (1, 10, 50) -> <1, 1-10, 10-50, >=50."""
    e = [float(x) for x in edges_ml]
    if not e or any(b <= a for a, b in pairwise(e)) or e[0] <= 0:
        raise ValueError(f"size-bin edges must be positive and increasing, got {edges_ml!r}")
    labels = [f"<{e[0]:g} ml"]
    labels += [f"{a:g}-{b:g} ml" for a, b in pairwise(e)]
    labels.append(f">={e[-1]:g} ml")
    return labels


def bin_volumes(volumes: pd.Series, edges_ml: Sequence[float]) -> pd.Categorical:
    """Left-closed ``[a, b)`` lesion-volume bins of ``volumes`` (ml)."""
    labels = size_bin_labels(edges_ml)
    edges = [-np.inf, *[float(x) for x in edges_ml], np.inf]
    return pd.cut(volumes.astype(float), bins=edges, labels=labels, right=False)


def size_bin_summary(
    table: pd.DataFrame, metrics: Sequence[str],
    edges_ml: Sequence[float] = DEFAULT_SIZE_BINS_ML, volume_column: str = "ref_volume_ml",
) -> pd.DataFrame:
    """Summaries per reference lesion-volume bin x condition x metric (empty bins omitted)."""
    t = table.copy()
    t["size_bin"] = bin_volumes(t[volume_column], edges_ml)
    t = t[t["size_bin"].notna()]
    out = summarize(t, metrics, by=("size_bin", "desc"))
    out["size_bin"] = out["size_bin"].astype(str)
    order = {lab: i for i, lab in enumerate(size_bin_labels(edges_ml))}
    out = out[out["n"] > 0].copy()
    out["_o"] = out["size_bin"].map(order)
    return out.sort_values("_o", kind="stable").drop(columns="_o").reset_index(drop=True)


def lesion_detection_by_size(
    lesions: pd.DataFrame, edges_ml: Sequence[float] = DEFAULT_SIZE_BINS_ML,
    conditions: Sequence[str] | None = None, *, n_boot: int = GroupSettings.n_boot, seed: int = 0,
    level: float = 0.95,
) -> pd.DataFrame:
    """Per-lesion detection rate by individual lesion-volume bin and condition.

    The rate is detected / all lesions of the bin. Its interval is a participant-level cluster
    bootstrap (Field & Welsh 2007): participants are resampled with all their lesions (every
    session and image), since lesions of one participant are not independent; the percentile
    interval of the resampled ratios, one resample of the participants shared by every bin and
    condition (seeded).
    """
    cols = ["desc", "size_bin", "n_participants", "n_lesions", "n_detected", "detection_rate",
            "ci_low", "ci_high", "mean_overlap_fraction"]
    if lesions is None or lesions.empty:
        return pd.DataFrame(columns=cols)
    t = lesions.copy()
    t["size_bin"] = bin_volumes(t["volume_ml"], edges_ml)
    t["detected"] = pd.to_numeric(t["detected"], errors="coerce")
    t = t[t["size_bin"].notna() & t["detected"].notna()]
    keys = ["desc", "size_bin"]
    g = t.groupby(keys, sort=False, observed=True)
    out = pd.DataFrame({"n_lesions": g["detected"].count(), "n_detected": g["detected"].sum(),
                        "n_participants": g["participant_id"].nunique(),
                        "mean_overlap_fraction": g["overlap_fraction"].mean()}).reset_index()
    out["n_lesions"] = out["n_lesions"].astype(int)
    out["n_detected"] = out["n_detected"].astype(int)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["detection_rate"] = out["n_detected"] / out["n_lesions"]
    # per participant and stratum: lesions and detections (participants x strata)
    who = [c for c in ("dataset", "participant_id") if c in t.columns]
    people = pd.MultiIndex.from_frame(t[who]).factorize(sort=True)[0]
    lookup = {k: i for i, k in enumerate(zip(out["desc"].astype(str),
                                             out["size_bin"].astype(str), strict=True))}
    col = np.array([lookup[k] for k in zip(t["desc"].astype(str), t["size_bin"].astype(str),
                                           strict=True)])
    n_people = int(people.max()) + 1 if people.size else 0
    total = np.zeros((n_people, len(out)))
    hits = np.zeros((n_people, len(out)))
    np.add.at(total, (people, col), 1.0)
    np.add.at(hits, (people, col), t["detected"].to_numpy(float))
    ci = bootstrap_units([n_people], Ratio(hits, total), len(out), n_boot=n_boot, seed=seed,
                         level=level)
    out["ci_low"], out["ci_high"] = ci[:, 0], ci[:, 1]
    out["size_bin"] = out["size_bin"].astype(str)
    conds = list(pd.unique(t["desc"])) if conditions is None else list(conditions)
    corder = {c: i for i, c in enumerate(conds)}
    border = {lab: i for i, lab in enumerate(size_bin_labels(edges_ml))}
    out["_c"] = out["desc"].map(corder)
    out["_b"] = out["size_bin"].map(border)
    out = out.sort_values(["_c", "_b"], kind="stable").drop(columns=["_c", "_b"])
    return out[cols].reset_index(drop=True)


def condition_means(
    mats: Mapping[str, np.ndarray], conditions: Sequence[str],
    strata: Mapping[str, np.ndarray] | None = None, *, n_boot: int = GroupSettings.n_boot,
    seed: int = 0,
    level: float = 0.95,
) -> pd.DataFrame:
    """Mean and percentile-bootstrap CI of the mean per metric, stratum and condition.

    ``mats`` maps a metric to its (units x conditions) matrix (NaN = no value), all on one unit
    axis; ``strata`` maps a stratum name to a boolean mask of the units (default: ``all``).
    The units are resampled once for every mean (one matrix product per resample batch).
    """
    groups: dict[str, np.ndarray | None] = {"all": None} if strata is None else dict(strata)
    cols, rows = [], []
    for metric, mat in mats.items():
        for name, mask in groups.items():
            sub = mat if mask is None else np.where(np.asarray(mask)[:, None], mat, np.nan)
            for j, cond in enumerate(conditions):
                v = sub[:, j]
                fin = v[np.isfinite(v)]
                cols.append(v)
                rows.append({"metric": metric, "stratum": name, "desc": cond, "n": fin.size,
                             "mean": float(fin.mean()) if fin.size else np.nan})
    out = pd.DataFrame(rows, columns=["metric", "stratum", "desc", "n", "mean"])
    if not cols:
        return out.assign(ci_low=[], ci_high=[])
    means = Means(np.column_stack(cols))
    ci = bootstrap_units([len(cols[0])], means, len(cols), n_boot=n_boot, seed=seed,
                         level=level)
    out["ci_low"], out["ci_high"] = ci[:, 0], ci[:, 1]
    return out
