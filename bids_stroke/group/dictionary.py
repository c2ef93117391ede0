"""Data dictionary of the group-level TSV columns (the JSON sidecars' content)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["COLUMN_DICTIONARY", "DETECTION_DICTIONARY", "EQUIVALENCE_DICTIONARY",
           "LESION_SIZE_DICTIONARY", "ColumnDescription", "metric_descriptions"]

#: one column's entry: ``LongName``, ``Description``, ``Units`` (text) and ``Levels`` (value
#: -> meaning)
ColumnDescription = dict[str, str | dict[str, str]]

COLUMN_DICTIONARY: dict[str, ColumnDescription] = {
    "participant_id": {"LongName": "Participant", "Description": "BIDS participant label."},
    "session_id": {"LongName": "Session",
                   "Description": "BIDS session label (n/a when the dataset has none)."},
    "image_id": {"LongName": "Input image",
                 "Description": "sub-X[_ses-Y][_acq-..][_run-..] of the segmented image "
                                "(tells runs/acquisitions of one session apart)."},
    "desc": {"LongName": "Condition label",
             "Description": "BIDS desc entity of the resolution condition."},
    "condition": {"LongName": "Condition specification",
                  "Description": "Canonical specification of the degradation (e.g. crude:2)."},
    "effective_resolution_mm": {"LongName": "Effective resolution",
                                "Description": "Cube root of the effective voxel volume.",
                                "Units": "mm"},
    "metric": {"LongName": "Metric", "Description": "Segmentation metric name."},
    "value": {"LongName": "Value", "Description": "Metric value (n/a when undefined)."},
    "size_bin": {"LongName": "Lesion-volume bin",
                 "Description": "Left-closed bin [a, b) of the lesion volume in ml."},
    "n": {"LongName": "Number of observations",
          "Description": "Units (participants or images, see the report) with a finite value "
                         "(pairs / complete cases for tests)."},
    "mean": {"LongName": "Mean", "Description": "Arithmetic mean."},
    "std": {"LongName": "Standard deviation", "Description": "Sample SD (ddof = 1)."},
    "min": {"LongName": "Minimum", "Description": "Minimum."},
    "q1": {"LongName": "First quartile",
           "Description": "25th percentile (linear interpolation)."},
    "median": {"LongName": "Median", "Description": "Median."},
    "q3": {"LongName": "Third quartile",
           "Description": "75th percentile (linear interpolation)."},
    "iqr": {"LongName": "Interquartile range", "Description": "q3 - q1."},
    "max": {"LongName": "Maximum", "Description": "Maximum."},
    "condition_a": {"LongName": "Condition A", "Description": "First condition (d = A - B)."},
    "condition_b": {"LongName": "Condition B", "Description": "Second condition."},
    "n_dropped": {"LongName": "Units dropped",
                  "Description": "Units without a finite value in every compared "
                                 "condition (pairwise / complete-case deletion)."},
    "n_zero": {"LongName": "Zero differences",
               "Description": "Pairs with A - B = 0 (discarded by zero_method wilcox)."},
    "mean_a": {"LongName": "Mean A", "Description": "Mean of A over the pairs used."},
    "mean_b": {"LongName": "Mean B", "Description": "Mean of B over the pairs used."},
    "mean_diff": {"LongName": "Mean difference", "Description": "Mean of A - B."},
    "median_diff": {"LongName": "Median difference", "Description": "Median of A - B."},
    "t_plus": {"LongName": "T+", "Description": "Sum of ranks of positive differences."},
    "t_minus": {"LongName": "T-", "Description": "Sum of ranks of negative differences."},
    "W": {"LongName": "Wilcoxon W",
          "Description": "Two-sided signed-rank statistic min(T+, T-) (SciPy convention)."},
    "p": {"LongName": "p-value", "Description": "Two-sided unadjusted p-value."},
    "method": {"LongName": "p-value method",
               "Description": "exact (exact null distribution: fewer than 50 non-zero "
                              "differences, no ties, no zeros) or asymptotic (normal "
                              "approximation with tie and continuity corrections): R's "
                              "wilcox.test rule."},
    "digits_rank": {"LongName": "Rounding before ranking",
                    "Description": "Significant digits kept before ranking and tie detection "
                                   "(R's digits.rank), or 'exact' (binary values compared)."},
    "family": {"LongName": "Multiplicity family",
               "Description": "confirmatory: the primary metric's comparisons; exploratory: "
                              "every other metric (its own family).",
               "Levels": {"confirmatory": "the primary metric",
                          "exploratory": "a secondary metric"}},
    "hl_change": {"LongName": "Hodges-Lehmann change B - A",
                  "Description": "Hodges-Lehmann estimate (pseudomedian) of the paired change "
                                 "from condition A to B, as R's wilcox.test(b, a, paired = "
                                 "TRUE, conf.int = TRUE)."},
    "hl_ci_low_unadjusted": {
        "LongName": "Hodges-Lehmann CI low, unadjusted",
        "Description": "Signed-rank inversion interval at 1 - alpha (hl_conf_level_unadjusted); "
                       "excludes 0 exactly when p < alpha. Datasets: Mann-Whitney interval of "
                       "hl_shift."},
    "hl_ci_high_unadjusted": {
        "LongName": "Hodges-Lehmann CI high, unadjusted",
        "Description": "Signed-rank inversion interval at 1 - alpha (hl_conf_level_unadjusted); "
                       "datasets: Mann-Whitney interval of hl_shift."},
    "hl_conf_level_unadjusted": {
        "LongName": "Level of the unadjusted interval",
        "Description": "1 - alpha, or R's achieved level when too few pairs cannot reach it."},
    "hl_ci_low_bonferroni": {
        "LongName": "Hodges-Lehmann CI low, Bonferroni",
        "Description": "Signed-rank inversion interval at 1 - alpha / m, m = tests in the "
                       "metric's family: simultaneous over the family."},
    "hl_ci_high_bonferroni": {
        "LongName": "Hodges-Lehmann CI high, Bonferroni",
        "Description": "Signed-rank inversion interval at 1 - alpha / m: simultaneous over the "
                       "family."},
    "hl_conf_level_bonferroni": {
        "LongName": "Level of the Bonferroni interval",
        "Description": "1 - alpha / m, or R's achieved level when too few pairs cannot reach "
                       "it."},
    "hl_method": {"LongName": "Hodges-Lehmann interval method",
                  "Description": "exact (order statistics at the exact null quantiles) or "
                                 "asymptotic (normal approximation inverted with R's root "
                                 "finder), by R's rule."},
    "hl_shift": {"LongName": "Hodges-Lehmann shift A - B",
                 "Description": "Median of all differences between the datasets' values, as R's "
                                "wilcox.test(a, b, conf.int = TRUE)."},
    "zero_method": {"LongName": "Zero handling",
                    "Description": "wilcox: zero differences discarded; pratt: ranked, then "
                                   "excluded from the rank sums."},
    "p_holm": {"LongName": "Holm-adjusted p",
               "Description": "Holm step-down adjustment; family = all condition pairs of "
                              "one metric."},
    "p_fdr_bh": {"LongName": "BH-adjusted p",
                 "Description": "Benjamini-Hochberg FDR adjustment; family = all condition "
                                "pairs of one metric."},
    "rank_biserial": {"LongName": "Matched-pairs rank-biserial correlation",
                      "Description": "(T+ - T-) / (T+ + T-); positive: A tends to be larger."},
    "rb_ci_low_unadjusted": {
        "LongName": "Rank-biserial 95% CI low, unadjusted",
        "Description": "Seeded percentile bootstrap of the units; computed for the pairs that "
                       "involve the reference (first) condition."},
    "rb_ci_high_unadjusted": {
        "LongName": "Rank-biserial 95% CI high, unadjusted",
        "Description": "Seeded percentile bootstrap of the units; computed for the pairs that "
                       "involve the reference (first) condition."},
    "alpha": {"LongName": "Significance level",
              "Description": "Applied to the raw and to the Holm-adjusted p."},
    "significant": {"LongName": "Significant (Holm)",
                    "Description": "yes when the Holm-adjusted p (p_holm; p_bm_holm, "
                                   "Brunner-Munzel, for datasets) < alpha.",
                    "Levels": {"yes": "adjusted p < alpha", "no": "adjusted p >= alpha",
                               "n/a": "test not possible"}},
    "significant_uncorrected": {
        "LongName": "Significant without correction",
        "Description": "yes when the raw p (p; p_bm for datasets) < alpha, the criterion of "
                       "the original study (no correction for multiple comparisons).",
        "Levels": {"yes": "p < alpha", "no": "p >= alpha", "n/a": "test not possible"}},
    "k": {"LongName": "Number of conditions", "Description": "Conditions compared."},
    "chi2": {"LongName": "Friedman chi-square",
             "Description": "Tie-corrected Friedman statistic (scipy.stats.friedmanchisquare)."},
    "df": {"LongName": "Degrees of freedom", "Description": "k - 1."},
    "kendall_w": {"LongName": "Kendall's W",
                  "Description": "Coefficient of concordance chi2 / (n (k - 1))."},
    "n_lesions": {"LongName": "Reference lesions", "Description": "Lesions in the bin."},
    "n_detected": {"LongName": "Detected lesions",
                   "Description": "Reference lesions overlapped by the prediction."},
    "detection_rate": {"LongName": "Detection rate", "Description": "n_detected / n_lesions."},
    "ci_low": {"LongName": "CI low", "Description": "Lower limit of the row's interval."},
    "ci_high": {"LongName": "CI high", "Description": "Upper limit of the row's interval."},
    "mean_overlap_fraction": {"LongName": "Mean overlap fraction",
                              "Description": "Mean fraction of each lesion's voxels predicted."},
    "dataset": {"LongName": "Dataset", "Description": "Label of a compared dataset "
                "(--compare LABEL=DIR or the study file's group.compare)."},
    "n_images": {"LongName": "Images averaged",
                 "Description": "Images (sessions, runs) of the participant averaged into this "
                                "row (group unit 'participant')."},
    "stratum": {"LongName": "Stratum",
                "Description": "'all' units, or a bin of the total reference lesion volume."},
    "mean_ci_low": {"LongName": "Mean 95% CI low",
                    "Description": "Percentile bootstrap of the units (seeded)."},
    "mean_ci_high": {"LongName": "Mean 95% CI high",
                     "Description": "Percentile bootstrap of the units (seeded)."},
    "median_a": {"LongName": "Median A", "Description": "Median of A over the values used."},
    "median_b": {"LongName": "Median B", "Description": "Median of B over the values used."},
    "dataset_a": {"LongName": "Dataset A", "Description": "First dataset of the comparison."},
    "dataset_b": {"LongName": "Dataset B", "Description": "Second dataset."},
    "n_a": {"LongName": "n A", "Description": "Units of dataset A with a finite value."},
    "n_b": {"LongName": "n B", "Description": "Units of dataset B with a finite value."},
    "U": {"LongName": "Mann-Whitney U",
          "Description": "U statistic of dataset A (R's wilcox.test W)."},
    "p_mwu": {"LongName": "Mann-Whitney p",
              "Description": "Two-sided; exact when both n < 50 without ties, else normal "
                             "approximation with continuity and tie corrections (as R)."},
    "mwu_method": {"LongName": "Mann-Whitney p method", "Description": "exact or asymptotic."},
    "bm_statistic": {"LongName": "Brunner-Munzel statistic",
                     "Description": "Positive when dataset B tends to be larger."},
    "bm_df": {"LongName": "Brunner-Munzel df",
              "Description": "Satterthwaite degrees of freedom of the t approximation."},
    "p_bm": {"LongName": "Brunner-Munzel p",
             "Description": "Two-sided; t approximation, or the studentised permutation test "
                            "when a group has fewer than 10 values (bm_method)."},
    "bm_method": {"LongName": "Brunner-Munzel method",
                  "Description": "t (Satterthwaite df) or 'permutation (N splits)' (Neubert & "
                                 "Brunner 2007: all splits, or N seeded random ones)."},
    "p_bm_fdr_bh": {"LongName": "BH-adjusted Brunner-Munzel p",
                    "Description": "Family: all compared pairs of one metric."},
    "desc_a": {"LongName": "Condition of A", "Description": "Condition label of dataset A."},
    "desc_b": {"LongName": "Condition of B", "Description": "Condition label of dataset B."},
    "delta_bm_ci_low_unadjusted": {
        "LongName": "Cliff's delta CI low (Brunner-Munzel), unadjusted",
        "Description": "Interval inverting the Brunner-Munzel test at 1 - alpha: 1 - 2 (p +- "
                       "t se) (permutation: permutation quantiles), clipped to [-1, 1]."},
    "delta_bm_ci_high_unadjusted": {
        "LongName": "Cliff's delta CI high (Brunner-Munzel), unadjusted",
        "Description": "Interval inverting the Brunner-Munzel test at 1 - alpha."},
    "delta_bm_ci_low_bonferroni": {
        "LongName": "Cliff's delta CI low (Brunner-Munzel), Bonferroni",
        "Description": "Interval inverting the Brunner-Munzel test at 1 - alpha / m, m = "
                       "compared pairs of the metric."},
    "delta_bm_ci_high_bonferroni": {
        "LongName": "Cliff's delta CI high (Brunner-Munzel), Bonferroni",
        "Description": "Interval inverting the Brunner-Munzel test at 1 - alpha / m."},
    "cliffs_delta": {"LongName": "Cliff's delta",
                     "Description": "P(A > B) - P(A < B), ties count half (= 2U/(n_A n_B) - 1, "
                                    "the rank-biserial correlation)."},
    "delta_ci_low_unadjusted": {
        "LongName": "Cliff's delta 95% CI low (bootstrap), unadjusted",
        "Description": "Percentile bootstrap, each dataset resampled on its own."},
    "delta_ci_high_unadjusted": {
        "LongName": "Cliff's delta 95% CI high (bootstrap), unadjusted",
        "Description": "Percentile bootstrap, each dataset resampled on its own."},
    "p_mwu_holm": {"LongName": "Holm-adjusted Mann-Whitney p",
                   "Description": "Family: all compared pairs of one metric."},
    "p_mwu_fdr_bh": {"LongName": "BH-adjusted Mann-Whitney p",
                     "Description": "Family: all compared pairs of one metric."},
    "p_bm_holm": {"LongName": "Holm-adjusted Brunner-Munzel p",
                  "Description": "Family: all compared pairs of one metric; decides "
                                 "'significant'."},
}

#: the detection table's own entries (its interval is a cluster bootstrap)
DETECTION_DICTIONARY: dict[str, ColumnDescription] = {
    "n_participants": {"LongName": "Participants",
                       "Description": "Participants with a lesion in the bin."},
    "ci_low": {"LongName": "Detection rate 95% CI low",
               "Description": "Participant-level cluster bootstrap (participants resampled "
                              "with all their lesions; percentile interval, seeded)."},
    "ci_high": {"LongName": "Detection rate 95% CI high",
                "Description": "Participant-level cluster bootstrap (participants resampled "
                               "with all their lesions; percentile interval, seeded)."},
}

#: the lesion-size regression's own entries
LESION_SIZE_DICTIONARY: dict[str, ColumnDescription] = {
    "condition_a": {"LongName": "Reference condition",
                    "Description": "The change is condition_b - condition_a."},
    "condition_b": {"LongName": "Condition", "Description": "The condition judged."},
    "n": {"LongName": "Units", "Description": "Units with a change and a lesion (volume > 0)."},
    "n_dropped": {"LongName": "Units without a lesion",
                  "Description": "Units with a change but reference volume 0 (no log10)."},
    "slope_per_log10_ml": {
        "LongName": "Theil-Sen slope",
        "Description": "Median of the pairwise slopes of the change on log10 of the unit's "
                       "reference lesion volume (ml): the change per tenfold larger lesion."},
    "ci_low": {"LongName": "Slope CI low",
               "Description": "Kendall tau inversion interval (Sen 1968) at conf_level, "
                              "unadjusted."},
    "ci_high": {"LongName": "Slope CI high",
                "Description": "Kendall tau inversion interval (Sen 1968) at conf_level, "
                               "unadjusted."},
    "conf_level": {"LongName": "Confidence level", "Description": "1 - alpha."},
    "intercept": {"LongName": "Intercept",
                  "Description": "median(change - slope * log10 volume): the change at 1 ml."},
    "method": {"LongName": "Method", "Description": "Theil-Sen, Kendall tau interval."},
}

#: the equivalence table's own entries
EQUIVALENCE_DICTIONARY: dict[str, ColumnDescription] = {
    "direction": {"LongName": "Metric direction",
                  "Description": "Which way the metric improves.",
                  "Levels": {"higher is better": "e.g. Dice", "lower is better": "e.g. HD95",
                             "no direction": "e.g. a signed volume difference"}},
    "condition_a": {"LongName": "Reference condition",
                    "Description": "The condition every other is compared with (native)."},
    "condition_b": {"LongName": "Condition", "Description": "The condition judged."},
    "family_size": {"LongName": "Comparisons in the family",
                    "Description": "m of the Bonferroni adjustment (confirmatory rows); 1 for "
                                   "exploratory rows."},
    "n": {"LongName": "Pairs", "Description": "Units with a value under both conditions."},
    "margin": {"LongName": "Equivalence margin",
               "Description": "M in the metric's units: equivalence means the change lies in "
                              "(-M, M)."},
    "hl_estimate": {"LongName": "Hodges-Lehmann change",
                    "Description": "Estimate of condition_b - condition_a (paired "
                                   "pseudomedian), as R's wilcox.test(b, a, paired = TRUE, "
                                   "conf.int = TRUE)."},
    "ci_low": {"LongName": "CI low",
               "Description": "Signed-rank inversion interval at conf_level."},
    "ci_high": {"LongName": "CI high",
                "Description": "Signed-rank inversion interval at conf_level."},
    "conf_level": {"LongName": "Confidence level",
                   "Description": "1 - 2 alpha / family_size (confirmatory, Bonferroni) or 1 - "
                                  "2 alpha (exploratory), or R's achieved level when too few "
                                  "pairs cannot reach it."},
    "ci_adjustment": {"LongName": "Interval adjustment",
                      "Description": "bonferroni (simultaneous over the primary family) or "
                                     "unadjusted.",
                      "Levels": {"bonferroni": "confirmatory", "unadjusted": "exploratory"}},
    "verdict": {"LongName": "Verdict",
                "Description": "From the interval and the margin (strict inequalities).",
                "Levels": {"equivalent": "interval inside (-M, M)",
                           "non-inferior": "interval excludes a loss of M or more (not "
                                           "equivalent)",
                           "inferior": "interval entirely beyond a loss of M",
                           "inconclusive": "none of the above",
                           "different": "no-direction metrics: interval entirely beyond +-M",
                           "n/a": "fewer than 2 pairs"}},
    "sd_change": {"LongName": "SD of the changes",
                  "Description": "Sample SD of condition_b - condition_a (ddof = 1)."},
    "n_needed": {"LongName": "Units needed for equivalence",
                 "Description": "(pi/3)(z_(1-a) + z_(1-b))^2 sd^2 / (M - |estimate|)^2, 80% "
                                "power, a = (1 - conf_level) / 2; inf when |estimate| >= M; "
                                "n/a when equivalent."},
    "method": {"LongName": "Interval method",
               "Description": "signed-rank exact or signed-rank asymptotic (R's rule)."},
}


def metric_descriptions(metrics: Iterable[str],
                        sidecar: Path | None = None) -> dict[str, dict[str, str]]:
    """Sidecar entries of metric columns: the participant level's own data dictionary
    (``sidecar``, the JSON beside a ``*_segmetrics.tsv``) where it describes them, else the
    metric's readable name."""
    from bids_stroke.group.labels import metric_label

    known: dict[str, Any] = {}
    if sidecar is not None:
        try:
            known = json.loads(Path(sidecar).read_text())
        except (OSError, ValueError):
            known = {}
    out = {}
    for m in metrics:
        entry = known.get(m) if isinstance(known, dict) else None
        out[m] = (dict(entry) if isinstance(entry, dict) and "Description" in entry
                  else {"LongName": metric_label(m), "Description": metric_label(m)})
    return out
