"""Group-level figures (matplotlib, Agg canvas, Okabe-Ito colour-blind safe palette).

Every function takes the subject x condition metric table (one row per subject/session/
condition, ``desc`` = condition label) and returns a :class:`matplotlib.figure.Figure`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from scipy import stats

from bids_stroke.group.stats import DEFAULT_SIZE_BINS_ML, id_columns, size_bin_labels, to_wide
from bids_stroke.reports.html import OKABE_ITO, new_figure

__all__ = [
    "METRIC_LABELS",
    "condition_colours",
    "metric_label",
    "plot_bland_altman",
    "plot_dice_vs_resolution",
    "plot_metric_bars",
    "plot_metric_distributions",
    "plot_paired_lines",
]

METRIC_LABELS: dict[str, str] = {
    "dice": "Dice coefficient",
    "jaccard": "Jaccard index",
    "hd": "Hausdorff distance (mm)",
    "hd95": "95th percentile Hausdorff distance (mm)",
    "assd": "Average symmetric surface distance (mm)",
    "surface_dice": "Surface Dice",
    "lesion_f1": "Lesion-wise F1",
    "detection_rate": "Lesion detection rate",
    "abs_volume_diff_ml": "Absolute volume difference (ml)",
    "volume_diff_ml": "Volume difference (ml)",
    "ref_volume_ml": "Reference volume (ml)",
    "pred_volume_ml": "Predicted volume (ml)",
    "precision": "Precision",
    "recall": "Recall (sensitivity)",
    "mcc": "Matthews correlation coefficient",
}


def metric_label(metric: str) -> str:
    """Readable axis label of a metric column."""
    return METRIC_LABELS.get(metric, metric.replace("_", " "))


def condition_colours(conditions: Sequence[str]) -> dict[str, str]:
    """Okabe-Ito colour per condition (cycled after 8)."""
    return {c: OKABE_ITO[i % len(OKABE_ITO)] for i, c in enumerate(conditions)}


def _grid(n: int, ncols: int = 2, size: tuple[float, float] = (5.0, 3.6)) -> tuple[Figure, list]:
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    w, h = size[0] * ncols, size[1] * nrows
    fig = new_figure((w, h), layout=None)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel().tolist()
    # fixed margins (in inches) instead of a layout engine: ~3x faster to render
    fig.subplots_adjust(left=0.9 / w, right=1 - 0.2 / w, bottom=1.1 / h, top=1 - 0.6 / h,
                        wspace=0.3, hspace=1.2 / (size[1] - 1.2))
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def _mean_error(values: np.ndarray, error: str) -> tuple[float, float]:
    v = values[np.isfinite(values)]
    if v.size == 0:
        return np.nan, np.nan
    m = float(v.mean())
    if v.size < 2:
        return m, np.nan
    sd = float(v.std(ddof=1))
    if error == "sd":
        return m, sd
    return m, float(stats.t.ppf(0.975, v.size - 1) * sd / np.sqrt(v.size))


def _error_label(error: str) -> str:
    if error not in ("ci95", "sd"):
        raise ValueError(f"error must be 'ci95' or 'sd', got {error!r}")
    return "error bars: ±1 SD" if error == "sd" else "error bars: 95% CI of the mean (t)"


def plot_metric_bars(
    table: pd.DataFrame, metrics: Sequence[str], conditions: Sequence[str], *,
    error: str = "ci95",
) -> Figure:
    """Bar chart of the mean of each metric per condition with error bars (95% CI or SD)."""
    elabel = _error_label(error)
    colours = condition_colours(conditions)
    fig, axes = _grid(len(metrics))
    x = np.arange(len(conditions))
    for ax, metric in zip(axes, metrics, strict=True):
        me = [_mean_error(table.loc[table["desc"] == c, metric].to_numpy(float), error)
              for c in conditions]
        means = [m for m, _ in me]
        errs = [e for _, e in me]
        ax.bar(x, means, yerr=errs, color=[colours[c] for c in conditions],
               edgecolor="black", linewidth=0.6, capsize=4)
        ax.set_xticks(x, conditions, rotation=30, ha="right")
        ax.set_ylabel(metric_label(metric))
        ax.set_xlabel("Condition")
        ax.set_title(f"Mean {metric_label(metric)}", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"Mean per condition ({elabel})")
    return fig


def plot_metric_distributions(
    table: pd.DataFrame, metrics: Sequence[str], conditions: Sequence[str], *, seed: int = 0,
) -> Figure:
    """Box plot per condition with the subjects' values as jittered points."""
    colours = condition_colours(conditions)
    rng = np.random.default_rng(seed)
    fig, axes = _grid(len(metrics))
    for ax, metric in zip(axes, metrics, strict=True):
        data = []
        for c in conditions:
            v = table.loc[table["desc"] == c, metric].to_numpy(float)
            data.append(v[np.isfinite(v)])
        pos = np.arange(1, len(conditions) + 1)
        bp = ax.boxplot([d if d.size else np.array([np.nan]) for d in data], positions=pos,
                        widths=0.6, showfliers=False, patch_artist=True)
        for patch, c in zip(bp["boxes"], conditions, strict=True):
            patch.set_facecolor(colours[c])
            patch.set_alpha(0.45)
        for med in bp["medians"]:
            med.set_color("black")
        for p, d, c in zip(pos, data, conditions, strict=True):
            if d.size:
                alpha = float(np.clip(30.0 / d.size, 0.15, 0.8))
                ax.plot(p + rng.uniform(-0.18, 0.18, d.size), d, "o", markersize=2.8,
                        color=colours[c], markeredgecolor="black", markeredgewidth=0.2,
                        alpha=alpha, zorder=3)
        ax.set_xticks(pos, conditions, rotation=30, ha="right")
        ax.set_ylabel(metric_label(metric))
        ax.set_xlabel("Condition")
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle("Distribution per condition (box: median and IQR; whiskers: 1.5 IQR; "
                 "points: subjects)", fontsize=10)
    return fig


def plot_paired_lines(
    table: pd.DataFrame, metrics: Sequence[str], conditions: Sequence[str],
) -> Figure:
    """One grey line per subject across conditions, and the mean in black."""
    colours = condition_colours(conditions)
    fig, axes = _grid(len(metrics))
    x = np.arange(len(conditions), dtype=float)
    for ax, metric in zip(axes, metrics, strict=True):
        wide = to_wide(table, metric, conditions).to_numpy(float)
        n = wide.shape[0]
        segs = np.stack([np.broadcast_to(x, wide.shape), wide], axis=-1)
        alpha = float(np.clip(20.0 / max(n, 1), 0.03, 0.6))
        # NaN vertices break a line, so a missing condition leaves a gap for that subject
        ax.add_collection(LineCollection(list(segs), colors="0.4", linewidths=0.7,
                                         alpha=alpha))
        for i, c in enumerate(conditions):
            v = wide[:, i]
            ax.plot(np.full(v.size, x[i]), v, "o", markersize=2.5, color=colours[c],
                    alpha=alpha, zorder=3)
        counts = np.isfinite(wide).sum(axis=0)
        mean = np.where(counts > 0, np.nansum(wide, axis=0) / np.maximum(counts, 1), np.nan)
        ax.plot(x, mean, color="black", linewidth=2.2, marker="o", label="mean", zorder=4)
        ax.set_xticks(x, conditions, rotation=30, ha="right")
        ax.set_xlim(-0.3, len(conditions) - 0.7)
        ax.autoscale_view(scalex=False)
        ax.set_ylabel(metric_label(metric))
        ax.set_xlabel("Condition")
        ax.legend(loc="best", fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"Paired values per subject (n = {len(table.groupby(id_columns(table)))})",
                 fontsize=10)
    return fig


def plot_dice_vs_resolution(
    table: pd.DataFrame, conditions: Sequence[str], *, metric: str = "dice",
    edges_ml: Sequence[float] = DEFAULT_SIZE_BINS_ML,
) -> Figure:
    """Mean metric (95% CI) vs effective resolution, overall and per lesion-size bin."""
    labels = size_bin_labels(edges_ml)
    edges = [-np.inf, *map(float, edges_ml), np.inf]
    t = table.copy()
    t["size_bin"] = pd.cut(t["ref_volume_ml"].astype(float), edges, labels=labels,
                           right=False).astype(str)
    fig = new_figure((7.5, 4.8), layout=None)
    fig.subplots_adjust(left=0.11, right=0.97, bottom=0.12, top=0.92)
    ax = fig.subplots()
    groups = [("all subjects", t)] + [(lab, t[t["size_bin"] == lab]) for lab in labels]
    markers = "osD^vP*X"
    for gi, (name, sub) in enumerate(groups):
        if sub.empty:
            continue
        pts = []
        for c in conditions:
            rows = sub[sub["desc"] == c]
            if rows.empty:
                continue
            res = float(np.nanmedian(rows["effective_resolution_mm"].to_numpy(float)))
            m, e = _mean_error(rows[metric].to_numpy(float), "ci95")
            pts.append((res, m, e, c, len(rows)))
        if not pts:
            continue
        pts.sort(key=lambda p: (np.nan_to_num(p[0], nan=np.inf), p[3]))
        xs, ms, es = (np.array([p[i] for p in pts], float) for i in range(3))
        colour = "black" if gi == 0 else OKABE_ITO[(gi - 1) % len(OKABE_ITO)]
        n_sub = len(sub.groupby(id_columns(sub)))
        ax.errorbar(xs, ms, yerr=es, color=colour, marker=markers[gi % len(markers)],
                    linewidth=2.2 if gi == 0 else 1.2, capsize=3,
                    label=f"{name} (n = {n_sub})")
        if gi == 0:  # label the conditions once; conditions sharing a resolution together
            by_x: dict[float, list[tuple[float, str]]] = {}
            for xv, mv, _, c, _ in pts:
                by_x.setdefault(round(float(xv), 6), []).append((mv, c))
            for xv, items in by_x.items():
                ax.annotate(", ".join(c for _, c in items),
                            (xv, float(np.nanmax([m for m, _ in items]))),
                            textcoords="offset points", xytext=(4, 6), fontsize=7)
    ax.set_xlabel("Effective resolution (mm, cube root of the voxel volume)")
    ax.set_ylabel(f"Mean {metric_label(metric)} (95% CI)")
    ax.set_title(f"{metric_label(metric)} vs effective resolution by reference lesion volume",
                 fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, title="Reference lesion volume", title_fontsize=8)
    return fig


def plot_bland_altman(table: pd.DataFrame, conditions: Sequence[str]) -> Figure:
    """Bland-Altman plot of predicted vs reference lesion volume for each condition."""
    colours = condition_colours(conditions)
    fig, axes = _grid(len(conditions), ncols=3, size=(4.2, 3.4))
    for ax, c in zip(axes, conditions, strict=True):
        rows = table[table["desc"] == c]
        ref = rows["ref_volume_ml"].to_numpy(float)
        pred = rows["pred_volume_ml"].to_numpy(float)
        ok = np.isfinite(ref) & np.isfinite(pred)
        mean, diff = (ref[ok] + pred[ok]) / 2.0, pred[ok] - ref[ok]
        ax.plot(mean, diff, "o", markersize=2.8, color=colours[c], markeredgecolor="black",
                markeredgewidth=0.2, alpha=float(np.clip(40.0 / max(diff.size, 1), 0.15, 0.9)))
        if diff.size >= 2:
            bias, sd = float(diff.mean()), float(diff.std(ddof=1))
            ax.axhline(bias, color="black", linewidth=1.2, label=f"bias {bias:.2f} ml")
            for sgn in (-1, 1):
                ax.axhline(bias + sgn * 1.96 * sd, color="black", linestyle="--",
                           linewidth=0.9)
            ax.plot([], [], color="black", linestyle="--",
                    label=f"95% limits ±{1.96 * sd:.2f} ml")
            ax.legend(fontsize=7, loc="best")
        ax.axhline(0, color="0.6", linewidth=0.6)
        ax.set_title(f"{c} (n = {diff.size})", fontsize=9)
        ax.set_xlabel("Mean of predicted and reference volume (ml)", fontsize=8)
        ax.set_ylabel("Predicted - reference (ml)", fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle("Bland-Altman agreement of lesion volumes", fontsize=10)
    return fig
