"""Group-level figures (matplotlib, Agg canvas, Okabe-Ito colour-blind safe palette).

Conditions are drawn in study order (native first) with one colour each, the same in every
figure. Means carry percentile-bootstrap 95% CIs, which stay inside the metric's range. Very
large studies show a seeded random subset of the individual points/lines (the caption says so);
boxes, means and intervals always use every unit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import (
    FixedLocator,
    FuncFormatter,
    MaxNLocator,
    NullLocator,
    ScalarFormatter,
)

from bids_stroke.group.describe import id_columns, to_wide
from bids_stroke.group.labels import METRIC_BOUNDS, METRIC_LABELS, metric_label
from bids_stroke.group.resolution import ConditionGeometry
from bids_stroke.reports.html import OKABE_ITO, new_figure

__all__ = [
    "MAX_SHOWN",
    "METRIC_LABELS",
    "condition_colours",
    "dodge",
    "family_title",
    "metric_label",
    "plot_bland_altman",
    "plot_dataset_comparison",
    "plot_equivalence",
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
          bottom_in: float = 1.1) -> tuple[Figure, list[Axes]]:
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
    means: pd.DataFrame | None = None, error: str = "ci95", primary: str | None = None,
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
        family_title(ax, metric, primary)
        ax.grid(axis="y", alpha=0.3)
    what = ("percentile-bootstrap 95% CI" if error == "ci95"
            else "+-1 SD clipped to the metric's range")
    fig.suptitle("Distribution per condition (box: median and IQR, whiskers 1.5 IQR; points: "
                 f"units, at most {MAX_SHOWN} shown; diamond: mean, {what})", fontsize=9)
    return fig


def plot_paired_lines(
    table: pd.DataFrame, metrics: Sequence[str], conditions: Sequence[str], *, seed: int = 0,
    primary: str | None = None,
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
        family_title(ax, metric, primary)
        ax.grid(axis="y", alpha=0.3)
    shown_txt = f"; {MAX_SHOWN} shown" if n_units > MAX_SHOWN else ""
    fig.suptitle(f"Paired values per unit (grey lines, n = {n_units}{shown_txt}; black: mean)",
                 fontsize=10)
    return fig


def dodge(xs: Sequence[float] | np.ndarray, width: float) -> np.ndarray:
    """Offsets that spread points sharing an x value (within 1e-6) symmetrically by ``width``."""
    values = np.asarray(xs, dtype=float)
    out = np.zeros(values.size)
    keys = np.round(values, 6)
    for key in np.unique(keys[np.isfinite(keys)]):
        idx = np.flatnonzero(keys == key)
        out[idx] = (np.arange(idx.size) - (idx.size - 1) / 2.0) * width
    return out


def plot_metric_vs_resolution(
    means: pd.DataFrame, conditions: Sequence[str], geometry: Mapping[str, ConditionGeometry],
    *, metric: str = "dice", strata: Sequence[str] = ("all",),
    reference_name: str = "reference",
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
    ax.set_title(f"by total {reference_name} lesion volume", fontsize=9)
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


def _volumes(table: pd.DataFrame, cond: str, scale: str) -> tuple[np.ndarray, np.ndarray, int]:
    """Bland-Altman coordinates of one condition and the units left out of a log scale."""
    rows = table[table["desc"] == cond]
    ref = rows["ref_volume_ml"].to_numpy(float)
    pred = rows["pred_volume_ml"].to_numpy(float)
    ok = np.isfinite(ref) & np.isfinite(pred)
    if scale == "raw":
        return (ref[ok] + pred[ok]) / 2.0, pred[ok] - ref[ok], 0
    pos = ok & (ref > 0) & (pred > 0)
    return np.sqrt(ref[pos] * pred[pos]), pred[pos] / ref[pos], int(ok.sum() - pos.sum())


def _agreement(y: np.ndarray, scale: str) -> tuple[float, float, float] | None:
    """Bias and 95% limits of agreement (log: of the log ratio, back-transformed)."""
    if y.size < 2:
        return None
    v = np.log(y) if scale == "log" else y
    bias, sd = float(v.mean()), float(v.std(ddof=1))
    lims = (bias - 1.96 * sd, bias, bias + 1.96 * sd)
    if scale == "log":
        return float(np.exp(lims[0])), float(np.exp(lims[1])), float(np.exp(lims[2]))
    return lims


_RATIO_STEPS = [m * 10.0**e for e in range(-4, 5) for m in (1, 2, 5)]


def _ratio_limits(lo: float, hi: float) -> tuple[float, float]:
    """Log-axis limits widened to the readable ratios just outside ``[lo, hi]``."""
    below = [t for t in _RATIO_STEPS if t <= lo / 1.05]
    above = [t for t in _RATIO_STEPS if t >= hi * 1.05]
    return (below[-1] if below else lo / 1.2) / 1.05, (above[0] if above else hi * 1.2) * 1.05


def _ratio_ticks(lo: float, hi: float) -> list[float]:
    """Readable ratio ticks (0.5, 1, 2 ...) inside ``[lo, hi]``, 1 always among them."""
    steps = _RATIO_STEPS
    ticks = [t for t in steps if lo <= t <= hi]
    while len(ticks) > 7:
        ticks = ticks[::2] if 1.0 in ticks[::2] else ticks[1::2]
    return sorted({*ticks, 1.0})


def plot_bland_altman(table: pd.DataFrame, conditions: Sequence[str], *, seed: int = 0,
                      scale: str = "log", reference_name: str = "reference") -> Figure:
    """Bland-Altman plots of predicted against reference lesion volume, one common scale.

    ``scale="log"`` (default): the ratio predicted / reference against the geometric mean of
    the two volumes, both on log axes; bias and 95% limits of agreement are computed on the log
    ratio and shown back-transformed (a geometric mean ratio and its limits), so one large
    lesion does not set the limits of a cohort of small ones (Bland & Altman 1999). Units with
    an empty prediction or reference cannot be shown on it and are counted in the panel's
    title. ``scale="raw"``: differences in ml against the mean volume. ``reference_name``: what
    the reference is called on the axes.
    """
    if scale not in ("log", "raw"):
        raise ValueError(f"scale must be 'log' or 'raw', got {scale!r}")
    colours = condition_colours(conditions)
    fig, axes = _grid(len(conditions), ncols=3, size=(4.2, 3.8), bottom_in=0.7)
    fig.subplots_adjust(top=1 - 1.0 / fig.get_figheight(), hspace=0.75)  # two-line titles
    data = [_volumes(table, c, scale) for c in conditions]
    limits = [_agreement(y, scale) for _, y, _ in data]
    xs = np.concatenate([x for x, _, _ in data] + [np.zeros(0)])
    ys = np.concatenate([y for _, y, _ in data] + [np.array([1.0 if scale == "log" else 0.0])]
                        + [np.array(lim) for lim in limits if lim is not None])
    if scale == "log":
        xlim = (float(xs.min()) / 1.3, float(xs.max()) * 1.3) if xs.size else (0.1, 100.0)
        ylim = _ratio_limits(float(ys.min()), float(ys.max()))
    else:
        lo, hi = (float(xs.min()), float(xs.max())) if xs.size else (0.0, 1.0)
        xpad = 0.04 * (hi - lo or 1.0)
        xlim = (lo - xpad, hi + xpad)
        ypad = 0.06 * (float(ys.max() - ys.min()) or 1.0)
        ylim = (float(ys.min()) - ypad, float(ys.max()) + ypad)
    unit = "" if scale == "log" else " ml"
    for ax, c, (x, y, left_out), lim in zip(axes, conditions, data, limits, strict=True):
        keep = _subset(y.size, seed)
        ax.plot(x[keep], y[keep], "o", markersize=2.8, color=colours[c],
                markeredgecolor="black", markeredgewidth=0.2,
                alpha=float(np.clip(40.0 / max(keep.size, 1), 0.15, 0.9)))
        ax.axhline(1.0 if scale == "log" else 0.0, color="0.6", linewidth=0.6)
        title = f"{c} (n = {y.size}"
        title += f"; {left_out} with an empty volume not shown)" if left_out else ")"
        if lim is not None:
            low, bias, high = lim
            ax.axhline(bias, color="black", linewidth=1.2)
            for v in (low, high):
                ax.axhline(v, color="black", linestyle="--", linewidth=0.9)
            fmt: Callable[[float], str] = ((lambda v: f"{v:.2f}") if scale == "log"
                                           else (lambda v: f"{v:+.1f}"))
            what = "ratio" if scale == "log" else "bias"
            title += f"\n{what} {fmt(bias)}{unit}, 95% limits {fmt(low)} to {fmt(high)}{unit}"
        ax.set_title(title, fontsize=8)
        if scale == "log":
            ax.set_xscale("log")
            ax.set_yscale("log")
            ticks = _ratio_ticks(*ylim)
            ax.yaxis.set_major_locator(FixedLocator(ticks))
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.yaxis.set_minor_locator(NullLocator())
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.set_xlabel(f"Geometric mean of predicted and {reference_name} volume (ml, log)",
                          fontsize=8)
            ax.set_ylabel(f"Predicted / {reference_name} volume (log)", fontsize=8)
        else:
            ax.set_xlabel(f"Mean of predicted and {reference_name} volume (ml)", fontsize=8)
            ax.set_ylabel(f"Predicted - {reference_name} (ml)", fontsize=8)
        ax.set_xlim(*xlim)
        ax.set_ylim(*ylim)
        ax.grid(alpha=0.3)
    what = ("ratio of volumes, log scale: line = geometric mean ratio, dashed = 95% limits of "
            "agreement" if scale == "log" else "difference in ml: line = bias, dashed = 95% "
            "limits of agreement")
    fig.suptitle(f"Bland-Altman agreement of lesion volumes ({what}; same scale in every "
                 "panel; exploratory)", fontsize=9)
    return fig


#: colour of each verdict in the equivalence figure (Okabe-Ito: colour-blind safe)
VERDICT_COLOURS = {"equivalent": "#009E73", "non-inferior": "#56B4E9", "inferior": "#D55E00",
                   "different": "#D55E00", "inconclusive": "#E69F00", "n/a": "#999999"}


def plot_equivalence(equivalence: pd.DataFrame, phrases: Mapping[str, str] | None = None
                     ) -> Figure:
    """One panel per metric with a margin: each condition's Hodges-Lehmann change from the
    reference with its interval, the +-margin band shaded, the verdict beside it."""
    phrases = phrases or {}
    metrics = list(dict.fromkeys(equivalence["metric"]))
    rows = max((int((equivalence["metric"] == m).sum()) for m in metrics), default=1)
    ncols = max(1, min(2, len(metrics)))
    nrows = int(np.ceil(len(metrics) / ncols))
    panel, gap, top, bottom = 0.35 + 0.4 * rows, 1.0, 0.9, 0.5  # inches
    w, h = 6.4 * ncols, nrows * panel + (nrows - 1) * gap + top + bottom
    fig = new_figure((w, h), layout=None)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel().tolist()
    for ax in axes[len(metrics):]:
        ax.set_visible(False)
    axes = axes[:len(metrics)]
    fig.subplots_adjust(left=1.5 / w, right=1 - 1.1 / w, bottom=bottom / h, top=1 - top / h,
                        wspace=0.55, hspace=gap / panel)
    for ax, metric in zip(axes, metrics, strict=True):
        t = equivalence[equivalence["metric"] == metric].reset_index(drop=True)
        margin = float(t["margin"].iloc[0])
        y = np.arange(len(t))[::-1].astype(float)
        ax.axvspan(-margin, margin, color="0.9", zorder=0)
        ax.axvline(0, color="0.5", linewidth=0.8)
        for yi, r in zip(y, t.itertuples(), strict=True):
            colour = VERDICT_COLOURS.get(r.verdict, "#999999")
            if np.isfinite(r.ci_low) and np.isfinite(r.ci_high):
                ax.plot([r.ci_low, r.ci_high], [yi, yi], color=colour, linewidth=2.2)
            ax.plot([r.hl_estimate], [yi], "o", color=colour, markeredgecolor="black",
                    markeredgewidth=0.5, markersize=6)
            ax.annotate(r.verdict, (1.01, yi), xycoords=("axes fraction", "data"),
                        va="center", fontsize=8, color=colour)
        spread = [v for v in (*t["ci_low"], *t["ci_high"], margin, -margin) if np.isfinite(v)]
        lo, hi = min(spread), max(spread)
        pad = 0.08 * (hi - lo or 1.0)
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_ylim(-0.7, len(t) - 0.3)
        ax.set_yticks(y, [phrases.get(c, c) for c in t["condition_b"]], fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=6))
        ref = t["condition_a"].iloc[0]
        family = "primary" if t["family"].iloc[0] == "confirmatory" else "exploratory"
        adjust = ("Bonferroni over " f"{int(t['family_size'].iloc[0])}"
                  if t["ci_adjustment"].iloc[0] == "bonferroni" else "unadjusted")
        level = f"{100 * float(t['conf_level'].min()):.3g}%"
        ax.set_title(f"{metric_label(metric)} ({family}): change from {ref}\n{level} CI "
                     f"({adjust}); shaded: margin \u00b1{margin:g}", fontsize=8)
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle("Equivalence verdicts: Hodges-Lehmann change with its signed-rank interval",
                 fontsize=10)
    return fig


def family_title(ax: Axes, metric: str, primary: str | None) -> None:
    """Mark a metric's panel as the primary endpoint or exploratory."""
    if primary is not None:
        ax.set_title(f"{metric_label(metric)}: "
                     f"{'primary' if metric == primary else 'exploratory'}", fontsize=8)


def plot_dataset_comparison(
    table: pd.DataFrame, metrics: Sequence[str], conditions: Sequence[str],
    datasets: Sequence[str], *, primary: str | None = None,
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
        family_title(ax, metric, primary)
        ax.grid(axis="y", alpha=0.3)
    handles = [Patch(facecolor=colours[d], alpha=0.6, edgecolor="black") for d in datasets]
    fig.legend(handles, list(datasets), loc="upper right", fontsize=8)
    fig.suptitle("Datasets compared per condition (box: median and IQR; whiskers: 1.5 IQR)",
                 fontsize=10)
    return fig
