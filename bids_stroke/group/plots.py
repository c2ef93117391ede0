"""Group-level figures (matplotlib, Agg canvas, Okabe-Ito colour-blind safe palette).

Conditions are drawn in study order (native first) with one colour each, the same in every
figure. Means carry percentile-bootstrap 95% CIs, which stay inside the metric's range. Very
large studies show a seeded random subset of the individual points/lines (the caption says so);
boxes, means and intervals always use every unit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator, ScalarFormatter

from bids_stroke.group.describe import id_columns, to_wide
from bids_stroke.group.labels import METRIC_BOUNDS, METRIC_LABELS, metric_label
from bids_stroke.group.resolution import ConditionGeometry
from bids_stroke.reports.html import OKABE_ITO, new_figure

__all__ = [
    "MAX_SHOWN",
    "METRIC_LABELS",
    "condition_colours",
    "dodge",
    "metric_label",
    "plot_bland_altman",
    "plot_dataset_comparison",
    "plot_metric_distributions",
    "plot_metric_vs_resolution",
    "plot_paired_lines",
]

#: individual points / lines drawn per condition at most (a seeded subset beyond)
MAX_SHOWN = 1000


def condition_colours(conditions: Sequence[str]) -> dict[str, str]:
    """Okabe-Ito colour per condition (cycled after 8)."""
    return {c: OKABE_ITO[i % len(OKABE_ITO)] for i, c in enumerate(conditions)}


def _grid(n: int, ncols: int = 2, size: tuple[float, float] = (5.0, 3.6),
          bottom_in: float = 1.1) -> tuple[Figure, list]:
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    w, h = size[0] * ncols, size[1] * nrows + (bottom_in - 1.1)
    fig = new_figure((w, h), layout=None)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel().tolist()
    # fixed margins (in inches) instead of a layout engine: ~3x faster to render
    fig.subplots_adjust(left=0.9 / w, right=1 - 0.2 / w, bottom=bottom_in / h, top=1 - 0.6 / h,
                        wspace=0.3, hspace=1.2 / (size[1] - 1.2))
    for ax in axes[n:]:
        ax.set_visible(False)
    for ax in axes[:n]:  # fewer ticks: tick objects are most of matplotlib's drawing time
        ax.yaxis.set_major_locator(MaxNLocator(nbins=5))
        # plain tick values: specificity and accuracy sit near 1, where matplotlib would
        # otherwise label the axis "+1" or "-0.00006" and the ticks relative to that offset
        ax.yaxis.set_major_formatter(ScalarFormatter(useOffset=False))
    return fig, axes[:n]


def _subset(n: int, seed: int) -> np.ndarray:
    if n <= MAX_SHOWN:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, MAX_SHOWN, replace=False))


def _mean_interval(means: pd.DataFrame | None, metric: str, conditions: Sequence[str],
                   error: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    if means is None:
        return None
    t = means[means["metric"] == metric].set_index("desc").reindex(list(conditions))
    mean = t["mean"].to_numpy(float)
    if error == "ci95":
        return mean, t["ci_low"].to_numpy(float), t["ci_high"].to_numpy(float)
    lo_b, hi_b = METRIC_BOUNDS.get(metric, (-np.inf, np.inf))
    sd = t["std"].to_numpy(float)
    return mean, np.clip(mean - sd, lo_b, hi_b), np.clip(mean + sd, lo_b, hi_b)


def plot_metric_distributions(
    table: pd.DataFrame, metrics: Sequence[str], conditions: Sequence[str], *, seed: int = 0,
    means: pd.DataFrame | None = None, error: str = "ci95",
) -> Figure:
    """Box plot per condition with the units' values as jittered points, and the mean with its
    interval beside each box (``means``: ``metric, desc, mean`` and ``ci_low, ci_high`` for
    ``error="ci95"`` - a percentile-bootstrap CI - or ``std`` for ``error="sd"``, drawn as
    mean +- SD clipped to the metric's range)."""
    if error not in ("ci95", "sd"):
        raise ValueError(f"error must be 'ci95' or 'sd', got {error!r}")
    colours = condition_colours(conditions)
    rng = np.random.default_rng(seed)
    fig, axes = _grid(len(metrics))
    pos = np.arange(1, len(conditions) + 1)
    for ax, metric in zip(axes, metrics, strict=True):
        data = []
        for c in conditions:
            v = table.loc[table["desc"] == c, metric].to_numpy(float)
            data.append(v[np.isfinite(v)])
        bp = ax.boxplot([d if d.size else np.array([np.nan]) for d in data], positions=pos,
                        widths=0.5, showfliers=False, patch_artist=True)
        for patch, c in zip(bp["boxes"], conditions, strict=True):
            patch.set_facecolor(colours[c])
            patch.set_alpha(0.45)
        for med in bp["medians"]:
            med.set_color("black")
        for p, d, c in zip(pos, data, conditions, strict=True):
            d = d[_subset(d.size, seed)]
            if d.size:
                alpha = float(np.clip(30.0 / d.size, 0.15, 0.8))
                ax.plot(p + rng.uniform(-0.15, 0.15, d.size), d, "o", markersize=2.5,
                        color=colours[c], markeredgecolor="black", markeredgewidth=0.2,
                        alpha=alpha, zorder=3)
        mi = _mean_interval(means, metric, conditions, error)
        if mi is not None:
            m, lo, hi = mi
            ax.errorbar(pos + 0.38, m, yerr=np.nan_to_num(np.abs([m - lo, hi - m])), fmt="D",
                        color="black", markersize=4, capsize=2, linewidth=1, zorder=4)
        ax.set_xticks(pos, conditions, rotation=30, ha="right")
        ax.set_ylabel(metric_label(metric), fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    what = ("percentile-bootstrap 95% CI" if error == "ci95"
            else "+-1 SD clipped to the metric's range")
    fig.suptitle("Distribution per condition (box: median and IQR, whiskers 1.5 IQR; points: "
                 f"units, at most {MAX_SHOWN} shown; diamond: mean, {what})", fontsize=9)
    return fig


def plot_paired_lines(
    table: pd.DataFrame, metrics: Sequence[str], conditions: Sequence[str], *, seed: int = 0,
) -> Figure:
    """One grey line per unit across conditions, and the mean of all units in black."""
    colours = condition_colours(conditions)
    fig, axes = _grid(len(metrics))
    x = np.arange(len(conditions), dtype=float)
    n_units = len(table.groupby(id_columns(table)))
    for ax, metric in zip(axes, metrics, strict=True):
        wide = to_wide(table, metric, conditions).to_numpy(float)
        shown = wide[_subset(wide.shape[0], seed)]
        segs = np.stack([np.broadcast_to(x, shown.shape), shown], axis=-1)
        alpha = float(np.clip(20.0 / max(shown.shape[0], 1), 0.03, 0.6))
        # NaN vertices break a line, so a missing condition leaves a gap for that unit
        ax.add_collection(LineCollection(list(segs), colors="0.4", linewidths=0.7, alpha=alpha))
        for i, c in enumerate(conditions):
            ax.plot(np.full(shown.shape[0], x[i]), shown[:, i], "o", markersize=2.5,
                    color=colours[c], alpha=alpha, zorder=3)
        counts = np.isfinite(wide).sum(axis=0)
        mean = np.where(counts > 0, np.nansum(wide, axis=0) / np.maximum(counts, 1), np.nan)
        ax.plot(x, mean, color="black", linewidth=2.2, marker="o", zorder=4)
        ax.set_xticks(x, conditions, rotation=30, ha="right")
        ax.set_xlim(-0.3, len(conditions) - 0.7)
        ax.autoscale_view(scalex=False)
        ax.set_ylabel(metric_label(metric), fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    shown_txt = f"; {MAX_SHOWN} shown" if n_units > MAX_SHOWN else ""
    fig.suptitle(f"Paired values per unit (grey lines, n = {n_units}{shown_txt}; black: mean)",
                 fontsize=10)
    return fig


def dodge(xs: Sequence[float], width: float) -> np.ndarray:
    """Offsets that spread points sharing an x value (within 1e-6) symmetrically by ``width``."""
    xs = np.asarray(xs, dtype=float)
    out = np.zeros(xs.size)
    keys = np.round(xs, 6)
    for key in np.unique(keys[np.isfinite(keys)]):
        idx = np.flatnonzero(keys == key)
        out[idx] = (np.arange(idx.size) - (idx.size - 1) / 2.0) * width
    return out


def plot_metric_vs_resolution(
    means: pd.DataFrame, conditions: Sequence[str], geometry: Mapping[str, ConditionGeometry],
    *, metric: str = "dice", strata: Sequence[str] = ("all",),
) -> Figure:
    """Mean metric (95% CI) against the conditions' real slice and in-plane spacing.

    Panels: all units against the slice spacing and against the in-plane spacing - or, when
    every condition is isotropic (the two spacings equal, so those panels would be the same),
    one panel against the voxel size - (conditions at the same spacing are dodged sideways,
    told apart by colour, named in the legend: no labels on points); then the lesion-volume
    strata across the conditions in study order. One y scale.
    """
    conds = [c for c in conditions if c in geometry]
    colours = condition_colours(conditions)
    sub = means[means["metric"] == metric]
    isotropic = all(math.isclose(geometry[c].through_plane_mm, geometry[c].in_plane_mm,
                                 rel_tol=1e-6) for c in conds)
    spacings = ("voxel",) if isotropic else ("through", "in")
    fig, axes = _grid(len(spacings) + 1, ncols=len(spacings) + 1, size=(4.4, 3.6),
                      bottom_in=1.2 + 0.2 * int(np.ceil(max(len(conds), 1) / 2)))
    vals = sub[["ci_low", "mean", "ci_high"]].to_numpy(float)
    lims = (np.nanmin(vals), np.nanmax(vals)) if np.isfinite(vals).any() else (0.0, 1.0)
    pad = 0.05 * max(lims[1] - lims[0], 1e-9)
    allu = sub[sub["stratum"] == "all"].set_index("desc")
    xlabels = {"through": "slice spacing (mm)", "in": "in-plane spacing (mm)",
               "voxel": "voxel size (mm; every condition isotropic)"}
    for ax, axis in zip(axes[:-1], spacings, strict=True):
        xs = np.array([geometry[c].in_plane_mm if axis == "in"
                       else geometry[c].through_plane_mm for c in conds])
        span = float(np.ptp(xs)) if xs.size and np.ptp(xs) > 0 else 1.0
        for c, x in zip(conds, xs + dodge(xs, 0.05 * span), strict=True):
            if c not in allu.index:
                continue
            m, lo, hi = (float(allu.loc[c, k]) for k in ("mean", "ci_low", "ci_high"))
            eb = ax.errorbar([x], [m], yerr=np.abs(np.nan_to_num([[m - lo], [hi - m]])), fmt="o",
                             color=colours[c], capsize=3, markeredgecolor="black",
                             markeredgewidth=0.4, markersize=6)
            eb[0].set_gid(f"condition:{c}")
        if xs.size:
            ax.set_xticks(np.unique(np.round(xs, 3)))
            ax.set_xlim(float(xs.min()) - 0.15 * span, float(xs.max()) + 0.15 * span)
        ax.set_xlabel(xlabels[axis], fontsize=8)
        n = int(allu["n"].max()) if len(allu) else 0
        ax.set_title(f"all units (n <= {n})", fontsize=9)
    ax = axes[-1]
    x = np.arange(len(conditions))
    markers = "sD^vP*Xo"
    strata_handles = []
    for i, name in enumerate(s for s in strata if s != "all"):
        t = sub[sub["stratum"] == name].set_index("desc").reindex(list(conditions))
        m = t["mean"].to_numpy(float)
        err = np.abs(np.nan_to_num([m - t["ci_low"].to_numpy(float),
                                    t["ci_high"].to_numpy(float) - m]))
        colour = OKABE_ITO[(i + 4) % len(OKABE_ITO)]
        ax.errorbar(x + (i - 1.5) * 0.06, m, yerr=err, color=colour, marker=markers[i % 8],
                    markersize=4, linewidth=1, capsize=2)
        n = int(t["n"].max()) if t["n"].notna().any() else 0
        strata_handles.append((Line2D([], [], color=colour, marker=markers[i % 8]),
                               f"lesions {name} (n <= {n})"))
    ax.set_xticks(x, conditions, rotation=30, ha="right", fontsize=8)
    ax.set_title("by total reference lesion volume", fontsize=9)
    for a in axes:
        a.set_ylim(lims[0] - pad, lims[1] + pad)  # one scale for every panel
        a.set_ylabel(f"mean {metric_label(metric)}", fontsize=8)
        a.grid(alpha=0.3)
    handles = [Line2D([], [], marker="o", linestyle="", color=colours[c],
                      markeredgecolor="black", markeredgewidth=0.4) for c in conds]
    fig.legend(handles, [f"{c}: {geometry[c].voxel_text()} voxels" for c in conds],
               loc="lower left", bbox_to_anchor=(0.02, 0.0), ncol=2, fontsize=8, frameon=False)
    if strata_handles:
        fig.legend([h for h, _ in strata_handles], [lab for _, lab in strata_handles],
                   loc="lower right", bbox_to_anchor=(0.98, 0.0), ncol=1, fontsize=8,
                   frameon=False)
    fig.suptitle(f"{metric_label(metric)} against the real resolution of each condition "
                 "(mean, percentile-bootstrap 95% CI; same spacing: dodged)", fontsize=10)
    return fig


def plot_bland_altman(table: pd.DataFrame, conditions: Sequence[str], *, seed: int = 0) -> Figure:
    """Bland-Altman plots of predicted vs reference lesion volume, one common scale."""
    colours = condition_colours(conditions)
    fig, axes = _grid(len(conditions), ncols=3, size=(4.2, 3.4))
    data = []
    for c in conditions:
        rows = table[table["desc"] == c]
        ref = rows["ref_volume_ml"].to_numpy(float)
        pred = rows["pred_volume_ml"].to_numpy(float)
        ok = np.isfinite(ref) & np.isfinite(pred)
        data.append(((ref[ok] + pred[ok]) / 2.0, pred[ok] - ref[ok]))
    allx = np.concatenate([m for m, _ in data] + [np.zeros(1)])
    ally = np.concatenate([d for _, d in data] + [np.zeros(1)])
    xlim = (float(np.min(allx)), float(np.max(allx)))
    ylim = (float(np.min(ally)), float(np.max(ally)))
    for _, diff in data:
        if diff.size >= 2:
            ylim = (min(ylim[0], diff.mean() - 1.96 * diff.std(ddof=1)),
                    max(ylim[1], diff.mean() + 1.96 * diff.std(ddof=1)))
    xpad, ypad = 0.04 * (xlim[1] - xlim[0] or 1.0), 0.06 * (ylim[1] - ylim[0] or 1.0)
    for ax, c, (mean, diff) in zip(axes, conditions, data, strict=True):
        keep = _subset(diff.size, seed)
        ax.plot(mean[keep], diff[keep], "o", markersize=2.8, color=colours[c],
                markeredgecolor="black", markeredgewidth=0.2,
                alpha=float(np.clip(40.0 / max(keep.size, 1), 0.15, 0.9)))
        if diff.size >= 2:
            bias, sd = float(diff.mean()), float(diff.std(ddof=1))
            ax.axhline(bias, color="black", linewidth=1.2, label=f"bias {bias:.2f} ml")
            for sgn in (-1, 1):
                ax.axhline(bias + sgn * 1.96 * sd, color="black", linestyle="--", linewidth=0.9)
            ax.plot([], [], color="black", linestyle="--", label=f"95% limits ±{1.96 * sd:.2f} ml")
            ax.legend(fontsize=7, loc="upper left")
        ax.axhline(0, color="0.6", linewidth=0.6)
        ax.set_xlim(xlim[0] - xpad, xlim[1] + xpad)
        ax.set_ylim(ylim[0] - ypad, ylim[1] + ypad)
        ax.set_title(f"{c} (n = {diff.size})", fontsize=9)
        ax.set_xlabel("Mean of predicted and reference volume (ml)", fontsize=8)
        ax.set_ylabel("Predicted - reference (ml)", fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle("Bland-Altman agreement of lesion volumes (same scale in every panel)",
                 fontsize=10)
    return fig


def plot_dataset_comparison(
    table: pd.DataFrame, metrics: Sequence[str], conditions: Sequence[str],
    datasets: Sequence[str],
) -> Figure:
    """Box plots of each metric per condition, one box per dataset side by side."""
    fig, axes = _grid(len(metrics))
    k = len(datasets)
    width = 0.8 / max(k, 1)
    colours = {d: OKABE_ITO[(i + 4) % len(OKABE_ITO)] for i, d in enumerate(datasets)}
    for ax, metric in zip(axes, metrics, strict=True):
        for i, ds in enumerate(datasets):
            sub = table[table["dataset"] == ds]
            vals = []
            for c in conditions:
                v = sub.loc[sub["desc"] == c, metric].to_numpy(float)
                v = v[np.isfinite(v)]
                vals.append(v if v.size else np.array([np.nan]))
            pos = np.arange(len(conditions)) + (i - (k - 1) / 2) * width
            bp = ax.boxplot(vals, positions=pos, widths=width * 0.9, showfliers=False,
                            patch_artist=True)
            for patch in bp["boxes"]:
                patch.set_facecolor(colours[ds])
                patch.set_alpha(0.6)
            for med in bp["medians"]:
                med.set_color("black")
        ax.set_xticks(np.arange(len(conditions)), conditions, rotation=30, ha="right")
        ax.set_ylabel(metric_label(metric))
        ax.grid(axis="y", alpha=0.3)
    handles = [Patch(facecolor=colours[d], alpha=0.6, edgecolor="black") for d in datasets]
    fig.legend(handles, list(datasets), loc="upper right", fontsize=8)
    fig.suptitle("Datasets compared per condition (box: median and IQR; whiskers: 1.5 IQR)",
                 fontsize=10)
    return fig
