"""Public statistics API of the group level, gathered from the modules that implement it.

* :mod:`bids_stroke.group.corrections` - Holm and Benjamini-Hochberg adjustments;
* :mod:`bids_stroke.group.paired` - Wilcoxon signed-rank tests, Hodges-Lehmann changes and
  rank-biserial effect sizes;
* :mod:`bids_stroke.group.omnibus` - Friedman test and Kendall's W;
* :mod:`bids_stroke.group.unpaired` - Brunner-Munzel (t and studentised permutation),
  Mann-Whitney U, Hodges-Lehmann shifts, Cliff's delta;
* :mod:`bids_stroke.group.bootstrap` - the percentile bootstrap of units behind every CI;
* :mod:`bids_stroke.group.describe` - units, summaries, lesion-size strata, detection rates.
"""

from __future__ import annotations

from bids_stroke.group.bootstrap import bootstrap_units, percentile_limits
from bids_stroke.group.corrections import benjamini_hochberg, holm
from bids_stroke.group.describe import (
    DEFAULT_SIZE_BINS_ML,
    GROUP_UNITS,
    ID_COLUMNS,
    aggregate_units,
    condition_means,
    id_columns,
    lesion_detection_by_size,
    size_bin_labels,
    size_bin_summary,
    summarize,
    to_wide,
)
from bids_stroke.group.omnibus import friedman_chi2, friedman_table, friedman_test
from bids_stroke.group.paired import (
    DEFAULT_METRICS,
    bootstrap_rank_biserial_ci,
    choose_wilcoxon_method,
    pairwise_wilcoxon,
    rank_biserial,
    signed_rank_sums,
    unit_matrix,
    wilcoxon_signed_rank,
)
from bids_stroke.group.unpaired import (
    brunner_munzel,
    brunner_munzel_permutation,
    choose_mann_whitney_method,
    cliffs_delta,
    compare_datasets,
    mann_whitney,
)

__all__ = [
    "DEFAULT_METRICS",
    "DEFAULT_SIZE_BINS_ML",
    "GROUP_UNITS",
    "ID_COLUMNS",
    "aggregate_units",
    "benjamini_hochberg",
    "bootstrap_rank_biserial_ci",
    "bootstrap_units",
    "brunner_munzel",
    "brunner_munzel_permutation",
    "choose_mann_whitney_method",
    "choose_wilcoxon_method",
    "cliffs_delta",
    "compare_datasets",
    "condition_means",
    "friedman_chi2",
    "friedman_table",
    "friedman_test",
    "holm",
    "id_columns",
    "lesion_detection_by_size",
    "mann_whitney",
    "pairwise_wilcoxon",
    "percentile_limits",
    "rank_biserial",
    "signed_rank_sums",
    "size_bin_labels",
    "size_bin_summary",
    "summarize",
    "to_wide",
    "unit_matrix",
    "wilcoxon_signed_rank",
]
