"""The report's methods paragraphs, generated from the settings that were actually used."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bids_stroke.group.describe import size_bin_labels

__all__ = ["methods_text"]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def methods_text(
    *, n_participants: int, n_sessions: int, conditions: Sequence[str],
    descriptions: Mapping[str, str], specs: Mapping[str, str], metrics: Sequence[str],
    alpha: float, n_boot: int, seed: int, zero_method: str, edges_ml: Sequence[float],
    versions: Mapping[str, str], methods_used: Mapping[str, int] | None = None,
    unit: str = "participant", datasets: Sequence[str] = (), paired: bool = True,
    models: Sequence[str] = (),
) -> list[str]:
    """Methods paragraphs (plain text, escaped at rendering)."""
    conds = "; ".join(
        f"{c} ({specs.get(c, c)}{': ' + descriptions[c] if descriptions.get(c) else ''})"
        for c in conditions)
    zero_txt = ("zero differences were discarded before ranking (Wilcoxon's method)"
                if zero_method == "wilcox" else
                "zero differences were ranked and then excluded from the rank sums (Pratt's "
                "method)")
    vers = ", ".join(f"{k} {v}" for k, v in versions.items())
    used = ("" if not methods_used else " p-value methods used in this run: "
            + ", ".join(f"{m} ({_plural(n, 'test')})" for m, n in methods_used.items()) + ".")
    unit_txt = ("one value per participant (the metrics of a participant's images - sessions, "
                "runs - were averaged per condition)" if unit == "participant" else
                "one value per segmented image (images of one participant treated as "
                "independent)")
    k = len(conditions)
    out = [
        f"Segmentation metrics of {n_participants} participant(s) ({n_sessions} "
        f"participant-session(s)) were compared across {k} resolution condition(s): {conds}. "
        f"The statistical unit was {unit_txt}."
        + (f" Lesions were segmented by {'; '.join(models)}." if models else ""),
    ]
    if paired:
        out += [
            f"For each metric ({', '.join(metrics)}), every pair of conditions was compared "
            f"with a two-sided Wilcoxon signed-rank test (scipy.stats.wilcoxon) on the units "
            f"with a defined value in both conditions (pairwise deletion; undefined values such "
            f"as a 95th percentile Hausdorff distance without lesion were dropped and counted); "
            f"{zero_txt}. p-values were exact when n <= 50 without ties or zeros, from an "
            f"exhaustive permutation distribution when n <= 13 with ties or zeros, and from "
            f"the normal approximation with tie and continuity corrections otherwise.{used} "
            f"Effect sizes are the median paired change and the matched-pairs rank-biserial "
            f"correlation; for the comparisons with the reference condition "
            f"({conditions[0] if conditions else 'n/a'}) they carry percentile-bootstrap 95% "
            f"confidence intervals ({n_boot} resamples of the units drawn by "
            f"scipy.stats.bootstrap, seed {seed}, shared by all comparisons); means per "
            f"condition carry bootstrap intervals of the same kind, which stay inside the "
            f"metric's range.",
            f"Both raw p-values (significance at p < {alpha:g} without correction, the "
            f"criterion of the original study) and p-values adjusted within each metric across "
            f"all {k * (k - 1) // 2} condition pairs are reported: Holm's step-down procedure "
            f"(family-wise error; the 'significant' column and the findings use it at alpha = "
            f"{alpha:g}) and Benjamini-Hochberg (false discovery rate). A Friedman test with "
            f"Kendall's W was run per metric on complete cases.",
            f"Results were stratified by the unit's total reference lesion volume (bins "
            f"{', '.join(size_bin_labels(edges_ml))}); per-lesion detection rates by individual "
            f"lesion volume use Wilson 95% intervals.",
        ]
    if datasets:
        out.append(
            f"Datasets ({', '.join(datasets)}) were compared under each condition they share "
            f"with two-sided Mann-Whitney U tests (exact when both groups have fewer than 50 "
            f"values and no ties, otherwise the normal approximation with continuity and tie "
            f"corrections, as R's wilcox.test) and Brunner-Munzel tests (t approximation; valid "
            f"under unequal spread). The effect size is Cliff's delta P(A > B) - P(A < B) with a "
            f"percentile-bootstrap 95% CI (each dataset resampled on its own, {n_boot} "
            f"resamples). p-values were Holm- and BH-adjusted within each metric across all "
            f"conditions and dataset pairs.")
    out.append(f"Software: {vers}.")
    return out
