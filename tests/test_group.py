"""Group level: collection of derivatives, run_group outputs and the group report."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bids_stroke.group import collect
from bids_stroke.group import stats as S
from bids_stroke.group.run import GroupInputError, run_group
from bids_stroke.group.synthetic import (
    DEFAULT_SYNTHETIC_CONDITIONS,
    make_synthetic_output,
    record_commits,
)
from tests.docs_check import DOCS, output_tree

CONDS = DEFAULT_SYNTHETIC_CONDITIONS[:3]
TSVS = ["group_segmetrics.tsv", "group_desc-summary_segmetrics.tsv",
        "group_desc-means_segmetrics.tsv", "group_desc-sizebins_segmetrics.tsv",
        "group_desc-equivalence_stats.tsv", "group_desc-wilcoxon_stats.tsv",
        "group_desc-friedman_stats.tsv", "group_desc-lesiondetection_segmetrics.tsv",
        "group_desc-lesionsize_stats.tsv"]
FIGS = ["equivalence", "distributions", "paired", "dice-vs-resolution", "bland-altman"]
#: the metrics these tests look at (the library's default is the default study's eight)
METRICS = ["dice", "hd95", "lesion_f1", "abs_volume_diff_ml"]


@pytest.fixture(scope="module")
def group_out(tmp_path_factory) -> tuple[Path, Path]:
    out = make_synthetic_output(tmp_path_factory.mktemp("out"), 12, conditions=CONDS, seed=3)
    return out, run_group(out, metrics=METRICS, n_boot=200, seed=7)


def test_library_defaults_are_the_default_study() -> None:
    import inspect

    from bids_stroke.core.settings import GroupSettings
    from bids_stroke.group.paired import DEFAULT_METRICS

    group = GroupSettings()
    params = inspect.signature(run_group).parameters
    assert DEFAULT_METRICS == group.metrics and params["metrics"].default is None
    for name in ("alpha", "n_boot", "unit", "primary", "digits_rank", "bland_altman", "strict"):
        assert params[name].default == getattr(group, name), name


def test_run_group_writes_every_output(group_out) -> None:
    out, report = group_out
    assert report == out / "group_report.html"
    for name in TSVS:
        df = pd.read_csv(out / name, sep="\t", na_values="n/a", keep_default_na=False)
        assert len(df) > 0, name
        side = json.loads((out / name).with_suffix(".json").read_text())
        assert set(side) == set(df.columns), name
        assert all("Description" in v for v in side.values()), name
        assert not list(out.glob(f".{name}.*")), "temporary file left behind"
    for f in FIGS:
        assert (out / "figures" / f"group_{f}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    rows = pd.read_csv(out / "group_segmetrics.tsv", sep="\t", na_values="n/a",
                       keep_default_na=False)
    assert len(rows) == 12 * 3  # one row per image and condition, every metric column
    assert list(rows.columns) == ["participant_id", "session_id", "image_id", "desc",
                                  "condition", "effective_resolution_mm",
                                  *collect.METRIC_COLUMNS]
    side = json.loads((out / "group_segmetrics.json").read_text())
    assert side["dice"]["Description"] != "dice"  # metric columns documented
    seg = collect.read_segmetrics(out)
    row = seg[(seg.participant_id == "sub-0004") & (seg.desc == "crude2")].iloc[0]
    got = rows[(rows.participant_id == "sub-0004") & (rows.desc == "crude2")]["dice"].item()
    assert got == pytest.approx(row["dice"])

    wil = pd.read_csv(out / "group_desc-wilcoxon_stats.tsv", sep="\t")
    assert len(wil) == 4 * 3  # 4 default metrics x 3 pairs
    assert set(wil["metric"]) == {"dice", "hd95", "lesion_f1", "abs_volume_diff_ml"}
    assert {"p", "p_holm", "p_fdr_bh", "significant", "significant_uncorrected", "hl_change",
            "hl_ci_low_unadjusted", "hl_ci_high_unadjusted", "hl_ci_low_bonferroni",
            "hl_ci_high_bonferroni", "family"} <= set(wil.columns)
    assert set(wil.loc[wil.metric == "dice", "family"]) == {"confirmatory"}
    assert set(wil.loc[wil.metric != "dice", "family"]) == {"exploratory"}
    eq = pd.read_csv(out / "group_desc-equivalence_stats.tsv", sep="\t", na_values="n/a",
                     keep_default_na=False)
    assert {"metric", "condition_a", "condition_b", "n", "margin", "hl_estimate", "ci_low",
            "ci_high", "conf_level", "verdict", "method"} <= set(eq.columns)
    assert list(eq["condition_b"]) == ["crude2", "linear2"] and (eq["metric"] == "dice").all()
    assert (eq["margin"] == 0.05).all() and (eq["conf_level"] == 0.95).all()  # 2 comparisons
    assert set(eq["verdict"]) <= {"equivalent", "non-inferior", "inferior", "inconclusive"}
    side = json.loads((out / "group_desc-equivalence_stats.json").read_text())
    assert set(side["verdict"]["Levels"]) >= {"equivalent", "non-inferior", "inferior",
                                              "inconclusive"}
    det = json.loads((out / "group_desc-lesiondetection_segmetrics.json").read_text())
    assert "cluster bootstrap" in det["ci_low"]["Description"]
    means = pd.read_csv(out / "group_desc-means_segmetrics.tsv", sep="\t")
    dice = means[(means.metric == "dice")]
    assert ((dice.ci_low >= 0) & (dice.ci_high <= 1) & (dice.ci_low <= dice["mean"])).all()
    fr = pd.read_csv(out / "group_desc-friedman_stats.tsv", sep="\t")
    assert len(fr) == 4 and (fr["k"] == 3).all()
    summ = pd.read_csv(out / "group_desc-summary_segmetrics.tsv", sep="\t")
    assert {"n", "mean", "std", "min", "q1", "median", "q3", "iqr", "max"} <= set(summ.columns)


def test_report_contains_every_table_and_figure(group_out) -> None:
    out, report = group_out
    text = report.read_text()
    assert text.count("data:image/png;base64,") == len(FIGS)
    for tid in ["friedman", "wilcoxon", "wilcoxon-details", "sizebins", "lesiondetection",
                "findings", "summary-dice",
                "summary-hd95", "summary-lesion_f1", "summary-abs_volume_diff_ml"]:
        assert f"id='{tid}'" in text or f'id="{tid}"' in text, tid
    assert "The analysis included 12 participants" in text
    assert "alpha = 0.05" in text and "200 resamples" in text and "seed 7" in text
    assert "Holm" in text and "Benjamini-Hochberg" in text
    assert text.index('id="findings"') < text.index('id="verdicts"') < text.index(
        'id="methods"')  # findings come first
    assert "Statistics use one value per participant" in text
    wil = pd.read_csv(out / "group_desc-wilcoxon_stats.tsv", sep="\t")
    counts = wil["method"].value_counts(sort=False)
    assert "(this run: " + ", ".join(f"{m} ({n} tests)" for m, n in counts.items()) in text
    assert set(counts.index) <= {"exact", "asymptotic"}
    assert "numpy" in text and "scipy" in text
    for desc, spec, _, description in CONDS:  # conditions with their descriptions
        assert desc in text and spec in text
        assert description.replace("(", "").split()[0] in text
    assert "<script" not in text and 'src="http' not in text  # self-contained, static
    assert "@media print" in text


def test_deterministic(group_out, tmp_path) -> None:
    out, _ = group_out
    other = make_synthetic_output(tmp_path / "o", 12, conditions=CONDS, seed=3)
    run_group(other, metrics=METRICS, n_boot=200, seed=7)
    for name in TSVS:
        assert (other / name).read_text() == (out / name).read_text(), name


def test_empty_output_raises(tmp_path) -> None:
    with pytest.raises(GroupInputError, match=r"no .*segmetrics\.tsv found") as exc:
        run_group(tmp_path)
    assert "\n" not in str(exc.value)
    with pytest.raises(GroupInputError, match="does not exist"):
        run_group(tmp_path / "missing")
    assert issubclass(GroupInputError, RuntimeError)


def test_missing_condition_and_na_values(tmp_path) -> None:
    out = make_synthetic_output(tmp_path, 10, conditions=CONDS, seed=1)
    f = next((out / "sub-0002" / "anat").glob("*_segmetrics.tsv"))
    lines = f.read_text().splitlines()
    f.write_text("\n".join([lines[0], lines[1], lines[2]]) + "\n")  # drop the 3rd condition
    f = next((out / "sub-0005" / "anat").glob("*_segmetrics.tsv"))
    df = pd.read_csv(f, sep="\t", dtype=str, keep_default_na=False)
    df.loc[1, "hd95"] = "n/a"
    df.to_csv(f, sep="\t", index=False)
    record_commits(out)
    run_group(out, metrics=METRICS, n_boot=50)
    wil = pd.read_csv(out / "group_desc-wilcoxon_stats.tsv", sep="\t").set_index(
        ["metric", "condition_a", "condition_b"])
    third = CONDS[2][0]
    assert wil.loc[("dice", CONDS[0][0], third), "n"] == 9
    assert wil.loc[("dice", CONDS[0][0], third), "n_dropped"] == 1
    assert wil.loc[("dice", CONDS[0][0], CONDS[1][0]), "n_dropped"] == 0
    assert wil.loc[("hd95", CONDS[0][0], CONDS[1][0]), "n_dropped"] == 1
    fr = pd.read_csv(out / "group_desc-friedman_stats.tsv", sep="\t").set_index("metric")
    assert fr.loc["dice", "n"] == 9 and fr.loc["hd95", "n"] == 8


def test_participant_filter_and_sessions(tmp_path) -> None:
    out = make_synthetic_output(tmp_path, 6, conditions=CONDS, sessions=["1", "2"])
    seg = collect.read_segmetrics(out, participant_label=["0001", "sub-0003"])
    assert set(seg.participant_id) == {"sub-0001", "sub-0003"}
    assert set(seg.session_id) == {"ses-1", "ses-2"} and len(seg) == 2 * 2 * 3
    report = run_group(out, n_boot=20, participant_label="0002", metrics=["dice"])
    assert "1 participant (2 participant-sessions, 2 images)" in report.read_text()
    with pytest.raises(GroupInputError, match="participant"):
        run_group(out, participant_label="9999")
    with pytest.raises(ValueError, match="unknown metric"):
        run_group(out, metrics=["dice", "nope"])


def test_collect_validates_columns(tmp_path) -> None:
    out = make_synthetic_output(tmp_path, 3, conditions=CONDS, lesions=False)
    f = next((out / "sub-0002" / "anat").glob("*_segmetrics.tsv"))
    df = pd.read_csv(f, sep="\t", dtype=str, keep_default_na=False).drop(columns="hd95")
    df.to_csv(f, sep="\t", index=False)
    record_commits(out)
    with pytest.raises(GroupInputError, match=r"sub-0002.*missing column\(s\) hd95"):
        collect.read_segmetrics(out)
    assert collect.read_lesions(out) is None


def test_collect_fast_path_equals_per_file(tmp_path) -> None:
    out = make_synthetic_output(tmp_path, 5, conditions=CONDS)
    fast = collect.read_segmetrics(out)
    f = next((out / "sub-0003" / "anat").glob("*_segmetrics.tsv"))
    df = pd.read_csv(f, sep="\t", dtype=str, keep_default_na=False)
    df[df.columns[::-1]].to_csv(f, sep="\t", index=False)  # other column order: slow path
    record_commits(out)
    slow = collect.read_segmetrics(out)
    pd.testing.assert_frame_equal(fast, slow[fast.columns])
    assert fast["session_id"].eq("n/a").all()
    assert np.issubdtype(fast["dice"].dtype, np.floating)
    bad = next((out / "sub-0004" / "anat").glob("*_segmetrics.tsv"))
    df = pd.read_csv(bad, sep="\t", dtype=str, keep_default_na=False)
    df.loc[0, "dice"] = "abc"
    df.to_csv(bad, sep="\t", index=False)
    record_commits(out)
    with pytest.raises(GroupInputError, match=r"sub-0004.*non-numeric value 'abc'"):
        collect.read_segmetrics(out)


def test_metric_columns_match_metrics_module() -> None:
    """Every column the participant level writes is known; the only ones it may not write
    (yet) are the optional ones, which older outputs lack."""
    metrics = pytest.importorskip("bids_stroke.metrics")
    assert set(metrics.METRIC_COLUMNS) <= set(collect.METRIC_COLUMNS)
    assert set(collect.CORE_METRIC_COLUMNS) <= set(metrics.METRIC_COLUMNS)
    assert set(collect.METRIC_COLUMNS) - set(metrics.METRIC_COLUMNS) <= set(
        collect.OPTIONAL_METRIC_COLUMNS)


def test_lazy_package_exports() -> None:
    import bids_stroke.group as group

    assert group.run_group is run_group and group.GroupInputError is GroupInputError
    with pytest.raises(AttributeError):
        _ = group.nope


def _set_metric(out: Path, metric: str, values: dict[str, float], noise: float = 0.01,
                seed: int = 0) -> None:
    """Overwrite ``metric`` in every segmetrics TSV: ``values[desc]`` + small noise."""
    rng = np.random.default_rng(seed)
    for f in sorted(out.glob("sub-*/**/anat/*_segmetrics.tsv")):
        df = pd.read_csv(f, sep="\t", dtype=str, keep_default_na=False)
        base = rng.normal(0, noise)
        df[metric] = [f"{values[d] + base + rng.normal(0, noise):.6f}" for d in df["desc"]]
        df.to_csv(f, sep="\t", index=False)
    record_commits(out)


def test_findings_open_with_the_primary_verdicts(tmp_path) -> None:
    """Dice barely changes under crude2 and falls by 0.17 under linear2: the findings open
    with one verdict sentence per condition (equivalent, inferior), with the numbers of the
    equivalence table, then one exploratory line per other metric."""
    out = make_synthetic_output(tmp_path, 12, conditions=CONDS, seed=2)
    _set_metric(out, "dice", {"native": 0.92, "crude2": 0.915, "linear2": 0.75})
    run_group(out, metrics=["dice", "hd95"], n_boot=300, seed=1,
              conditions=["native", "crude:2", "linear:2"])
    text = html.unescape((out / "group_report.html").read_text())
    items = re.findall(r"<li[^>]*>(.*?)</li>", text[text.index('id="findings"'):])
    assert items[0].startswith("At crude 2 mm (crude2), Dice was equivalent to native within "
                               "\u00b10.05 (Hodges\u2013Lehmann change ")
    assert re.match(r"At linear 2 mm \(linear2\), Dice was inferior to native: lower by more "
                    r"than 0.05 \(Hodges\u2013Lehmann change \u22120\.1[67]\d*, ", items[1])
    assert "95% simultaneous CI" in items[0] and "Bonferroni over 2 comparisons" in items[0]
    assert "n = 12 participants" in items[0]
    assert items[2].startswith("Exploratory \u2013 HD95, change from native")
    assert items[3].startswith("Exploratory \u2013 lesion size: the change in Dice from native "
                               "per tenfold larger lesion (Theil\u2013Sen slope, 95% CI")
    assert items[4].startswith("Statistics use one value per participant")
    eq = pd.read_csv(out / "group_desc-equivalence_stats.tsv", sep="\t").set_index(
        "condition_b")
    lo, hi = (f"{eq.loc['crude2', k]:.3g}".replace("-", "\u2212") for k in ("ci_low", "ci_high"))
    assert f"CI {lo} to {hi}" in items[0]
    wil = pd.read_csv(out / "group_desc-wilcoxon_stats.tsv", sep="\t").set_index(
        ["metric", "condition_a", "condition_b"])
    assert wil.loc[("dice", "native", "linear2"), "p"] == pytest.approx(2 / 2**12)  # exact


def test_inconclusive_verdict_states_participants_needed(tmp_path) -> None:
    out = make_synthetic_output(tmp_path, 6, conditions=CONDS[:2], seed=4)
    _set_metric(out, "dice", {"native": 0.80, "crude2": 0.78}, noise=0.04, seed=2)
    run_group(out, metrics=["dice"], n_boot=50)
    eq = pd.read_csv(out / "group_desc-equivalence_stats.tsv", sep="\t").iloc[0]
    assert eq["verdict"] == "inconclusive" and eq["conf_level"] == 0.9  # one comparison
    text = html.unescape((out / "group_report.html").read_text())
    first = re.findall(r"<li[^>]*>(.*?)</li>", text[text.index('id="findings"'):])[0]
    assert first.startswith("At crude 2 mm (crude2), Dice was inconclusive against native")
    assert (f"about {int(eq['n_needed'])} participants would be needed to show equivalence "
            "with 80% power") in first
    # the interval lies below 0 without reaching past the margin: the change is shown
    # (lower), only its size against the margin is not; the sentence says both
    assert eq["ci_high"] < 0 and eq["ci_low"] < -0.05
    assert ("Dice was lower than native (the interval excludes 0); only the size of the "
            "change against the margin is unsettled.") in first


def test_inconclusive_verdict_claims_no_direction_when_the_interval_holds_0(tmp_path) -> None:
    out = make_synthetic_output(tmp_path, 6, conditions=CONDS[:2], seed=4)
    _set_metric(out, "dice", {"native": 0.80, "crude2": 0.79}, noise=0.06, seed=2)
    run_group(out, metrics=["dice"], n_boot=50)
    eq = pd.read_csv(out / "group_desc-equivalence_stats.tsv", sep="\t").iloc[0]
    assert eq["verdict"] == "inconclusive" and eq["ci_low"] < 0 < eq["ci_high"]
    text = html.unescape((out / "group_report.html").read_text())
    first = re.findall(r"<li[^>]*>(.*?)</li>", text[text.index('id="findings"'):])[0]
    assert first.startswith("At crude 2 mm (crude2), Dice was inconclusive against native")
    assert "excludes 0" not in first and "lower than native" not in first


def test_sessions_are_averaged_per_participant_by_default(tmp_path) -> None:
    out = make_synthetic_output(tmp_path, 8, conditions=CONDS, sessions=["1", "2"], seed=4)
    run_group(out, metrics=["dice"], n_boot=50)
    wil = pd.read_csv(out / "group_desc-wilcoxon_stats.tsv", sep="\t")
    assert (wil["n"] == 8).all()
    text = (out / "group_report.html").read_text()
    assert "the 8 participant(s) with several images" in text and "averaged" in text
    seg = collect.read_segmetrics(out)
    w = seg.groupby(["participant_id", "desc"])["dice"].mean().unstack()
    exp = S.wilcoxon_signed_rank(w["native"].to_numpy(), w["crude2"].to_numpy(), n_boot=0)
    got = wil.set_index(["condition_a", "condition_b"]).loc[("native", "crude2")]
    assert got["p"] == pytest.approx(exp["p"]) and got["W"] == exp["W"]

    run_group(out, metrics=["dice"], n_boot=50, unit="image")
    wil = pd.read_csv(out / "group_desc-wilcoxon_stats.tsv", sep="\t")
    assert (wil["n"] == 16).all()
    assert "pseudo-replication" in (out / "group_report.html").read_text()
    with pytest.raises(ValueError, match="group unit"):
        run_group(out, unit="session")


def test_older_outputs_without_optional_metric(tmp_path) -> None:
    cols = [c for c in collect.METRIC_COLUMNS if c not in collect.OPTIONAL_METRIC_COLUMNS]
    out = make_synthetic_output(tmp_path, 6, conditions=CONDS, columns=cols)
    seg = collect.read_segmetrics(out)
    assert seg["pred_fraction_pct"].isna().all()
    assert seg.attrs["absent_columns"] == ["grid_voxels", "pred_fraction_pct"]
    report = run_group(out, metrics=["dice", "pred_fraction_pct"], n_boot=20)
    wil = pd.read_csv(out / "group_desc-wilcoxon_stats.tsv", sep="\t")
    assert set(wil["metric"]) == {"dice"}
    assert "Metric pred_fraction_pct is not in these outputs" in report.read_text()
    with pytest.raises(ValueError, match="none of the metrics"):
        run_group(out, metrics=["pred_fraction_pct"], n_boot=20, primary="pred_fraction_pct",
                  margins={"pred_fraction_pct": 0.1})
    with pytest.raises(ValueError, match="primary metric pred_fraction_pct has no value"):
        run_group(out, metrics=["dice"], n_boot=20, primary="pred_fraction_pct",
                  margins={"pred_fraction_pct": 0.1})


def test_conditions_in_study_order_native_first(tmp_path) -> None:
    conds = [CONDS[2], CONDS[0], DEFAULT_SYNTHETIC_CONDITIONS[4], CONDS[1]]  # native 2nd
    out = make_synthetic_output(tmp_path / "a", 6, conditions=conds, seed=1)
    seg = collect.read_segmetrics(out)
    from bids_stroke.group import study

    assert study.order_conditions([seg]) == ["native", "linear2", "thick5mm", "crude2"]
    assert study.order_conditions([seg], ["crude:2", "thick:5", "native"]) == [
        "native", "crude2", "thick5mm", "linear2"]
    geo = study.geometries([seg], dict(zip(seg["desc"], seg["condition"], strict=True)))
    assert geo["thick5mm"].through_plane_mm == pytest.approx(5.0, abs=0.01)  # not 1.71
    assert geo["thick5mm"].in_plane_mm == pytest.approx(1.0, abs=0.01)
    assert geo["crude2"].voxel_text() == "2 mm"


def test_compare_datasets(tmp_path) -> None:
    a = make_synthetic_output(tmp_path / "atlas", 15, conditions=CONDS, seed=1)
    b = make_synthetic_output(tmp_path / "isles", 10, conditions=CONDS[:2], seed=2)
    _set_metric(b, "dice", {"native": 0.45, "crude2": 0.40}, noise=0.02, seed=3)
    res = tmp_path / "res"
    report = run_group(res, compare=["ATLAS=" + str(a), "ISLES=" + str(b)], n_boot=200,
                       metrics=["dice", "hd95"])
    stats_ = pd.read_csv(res / "group_desc-datasets_stats.tsv", sep="\t")
    assert len(stats_) == 2 * 2  # 2 metrics x the 2 shared conditions
    row = stats_[(stats_.metric == "dice") & (stats_.desc_a == "native")].iloc[0]
    assert (row.dataset_a, row.dataset_b, row.n_a, row.n_b) == ("ATLAS", "ISLES", 15, 10)
    assert row.cliffs_delta > 0.5 and row.significant == "yes" and row.p_bm_holm < 0.05
    rows = pd.read_csv(res / "group_desc-datasets_segmetrics.tsv", sep="\t")
    assert set(rows["dataset"]) == {"ATLAS", "ISLES"} and len(rows) == 15 * 3 + 10 * 2
    assert json.loads((res / "group_desc-datasets_stats.json").read_text())["cliffs_delta"]
    assert not (res / "group_desc-wilcoxon_stats.tsv").exists()  # no data of its own
    text = html.unescape(report.read_text())
    assert 'id="datasets"' in text and "Mann-Whitney" in text and "Brunner-Munzel" in text
    assert re.search(r"With native, Dice was higher in ATLAS \(median \S+, n = 15\) than in "
                     r"ISLES \(median 0\.4\d*, n = 10\): Cliff's delta", text)
    assert (res / "figures" / "group_datasets.png").is_file()
    # OUT can be one of the datasets: its paired tests are run as well
    run_group(a, compare={"ATLAS": a, "ISLES": b}, n_boot=50, metrics=["dice"])
    assert (a / "group_desc-wilcoxon_stats.tsv").is_file()
    assert (a / "group_desc-datasets_stats.tsv").is_file()
    with pytest.raises(GroupInputError, match="dataset ISLES"):
        run_group(res, compare={"ATLAS": a, "ISLES": tmp_path / "nope"})
    with pytest.raises(ValueError, match="LABEL=DIR"):
        run_group(res, compare=["ATLAS", "ISLES=x"])


def test_resolution_figure_dodges_and_never_overlaps(group_out) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from bids_stroke.group import plots, study
    from bids_stroke.group.describe import condition_means

    conds = [c[0] for c in DEFAULT_SYNTHETIC_CONDITIONS]
    geo = {c[0]: study.condition_geometry(c[1], c[2]) for c in DEFAULT_SYNTHETIC_CONDITIONS}
    rng = np.random.default_rng(0)
    mats = {"dice": rng.uniform(0.5, 0.9, (10, len(conds)))}
    means = pd.concat([condition_means(mats, conds, n_boot=50, seed=0), condition_means(
        mats, conds, {"<1 ml": np.arange(10) < 5, ">=1 ml": np.arange(10) >= 5}, n_boot=50)])
    fig = plots.plot_metric_vs_resolution(means, conds, geo, strata=["all", "<1 ml", ">=1 ml"])
    FigureCanvasAgg(fig).draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    xs = {ln.get_gid().split(":", 1)[1]: float(ln.get_xdata()[0]) for ln in ax.lines
          if (ln.get_gid() or "").startswith("condition:")}
    assert set(xs) == set(conds)
    assert xs["crude2"] != xs["linear2"] and abs(xs["crude2"] - 2) < 0.5
    assert abs(xs["thick5mm"] - 5.0) < 0.3  # plotted at its 5 mm slice spacing
    for axis in fig.axes:
        boxes = [t.get_window_extent(renderer) for t in axis.get_xticklabels()
                 if t.get_text() and t.get_visible()]
        for i, b1 in enumerate(boxes):
            assert not any(b1.overlaps(b2) for b2 in boxes[i + 1:])
    assert [len(leg.get_texts()) for leg in fig.legends] == [len(conds), 2]
    boxes = [t.get_window_extent(renderer) for leg in fig.legends for t in leg.get_texts()]
    assert all(not b1.overlaps(b2) for i, b1 in enumerate(boxes) for b2 in boxes[i + 1:])
    axes_boxes = [a.get_tightbbox(renderer) for a in fig.axes]
    assert all(not b.overlaps(a) for b in boxes for a in axes_boxes)  # legends below the axes
    assert len({a.get_ylim() for a in fig.axes if a.get_visible()}) == 1  # common scale


def test_resolution_figure_panels_each_say_something(group_out) -> None:
    """Isotropic conditions have equal slice and in-plane spacing: one panel against the
    voxel size instead of two identical ones; with a thick-slice condition the two spacing
    panels differ."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from bids_stroke.group import plots, study
    from bids_stroke.group.describe import condition_means

    specs = {c[0]: c for c in DEFAULT_SYNTHETIC_CONDITIONS}
    rng = np.random.default_rng(0)

    def figure(conds):
        geo = {c: study.condition_geometry(specs[c][1], specs[c][2]) for c in conds}
        means = condition_means({"dice": rng.uniform(0.5, 0.9, (8, len(conds)))}, conds,
                                n_boot=20, seed=0)
        fig = plots.plot_metric_vs_resolution(means, conds, geo)
        FigureCanvasAgg(fig).draw()
        return [a for a in fig.axes if a.get_visible()]

    def points(ax):
        return sorted((round(float(ln.get_xdata()[0]), 3), ln.get_gid()) for ln in ax.lines
                      if (ln.get_gid() or "").startswith("condition:"))

    iso = figure(["native", "crude2", "linear2"])
    assert len(iso) == 2 and "voxel size" in iso[0].get_xlabel()
    mixed = figure(["native", "linear2", "thick5mm"])
    assert len(mixed) == 3
    assert [a.get_xlabel() for a in mixed[:2]] == ["slice spacing (mm)", "in-plane spacing (mm)"]
    assert points(mixed[0]) != points(mixed[1])


def test_axes_near_one_have_no_offset_ticks() -> None:
    """Specificity and accuracy near 1 are labelled with their values, not "+1" or
    "-0.00006" and ticks relative to it."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from bids_stroke.group import plots

    rng = np.random.default_rng(0)
    rows = [{"participant_id": f"sub-{i:02d}", "session_id": "n/a", "image_id": f"sub-{i:02d}",
             "desc": c, "specificity": 1 - rng.uniform(0, 6e-5), "accuracy": 1 - rng.uniform(0,
                                                                                        2e-4)}
            for i in range(8) for c in ("native", "crude2")]
    table = pd.DataFrame(rows)
    for fig in (plots.plot_metric_distributions(table, ["specificity", "accuracy"],
                                                ["native", "crude2"]),
                plots.plot_paired_lines(table, ["specificity", "accuracy"],
                                        ["native", "crude2"])):
        FigureCanvasAgg(fig).draw()
        for ax in (a for a in fig.axes if a.get_visible()):
            assert ax.yaxis.get_offset_text().get_text() == ""
            labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
            assert labels and all(float(t.replace("\u2212", "-")) > 0.99 for t in labels), labels


def test_bland_altman_panels_share_one_scale(group_out) -> None:
    from bids_stroke.group import plots

    out, _ = group_out
    seg = collect.read_segmetrics(out)
    fig = plots.plot_bland_altman(seg, [c[0] for c in CONDS])
    visible = [a for a in fig.axes if a.get_visible()]
    assert len({a.get_ylim() for a in visible}) == 1 and len({a.get_xlim() for a in visible}) == 1


def test_cli_group_options(tmp_path) -> None:
    from bids_stroke.cli.run import main

    a = make_synthetic_output(tmp_path / "atlas", 6, conditions=CONDS, seed=1,
                              sessions=["1", "2"])
    b = make_synthetic_output(tmp_path / "isles", 5, conditions=CONDS[:2], seed=2)
    bids = tmp_path / "bids"
    bids.mkdir()
    res = tmp_path / "res"
    assert main([str(bids), str(res), "group", "--compare", f"ATLAS={a}", f"ISLES={b}",
                 "--group-unit", "image"]) == 0
    st = pd.read_csv(res / "group_desc-datasets_stats.tsv", sep="\t")
    assert st["n_a"].max() == 12  # images, not participants
    assert set(st["metric"]) == {"dice", "precision", "recall", "jaccard", "specificity",
                                 "accuracy", "rel_volume_diff", "pred_fraction_pct"}
    assert main([str(bids), str(res), "group", "--compare", f"ATLAS={a}"]) == 64
    study = tmp_path / "study.yml"
    study.write_text("conditions: [native, crude:2]\ngroup:\n  metrics: [dice]\n"
                     "  compare: {A: atlas, B: isles}\n")  # relative to the study file
    assert main([str(bids), str(tmp_path / "res2"), "group", "--study", str(study)]) == 0
    st = pd.read_csv(tmp_path / "res2" / "group_desc-datasets_stats.tsv", sep="\t")
    assert st["n_a"].max() == 6 and set(st["desc_a"]) == {"native", "crude2"}


def test_documented_tree_names_every_group_output(group_out) -> None:
    """docs/outputs.md's tree lists every file the group level writes, and each group file it
    lists without "only" is written (no stale names); the whole tree is compared with a real
    ``make demo`` in tests/test_make_demo.py."""
    out, _ = group_out
    entries = [e for e in output_tree((DOCS / "outputs.md").read_text())
               if e.pattern.startswith(("group_", "figures/"))]
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*")
                     if p.is_file() and p.relative_to(out).as_posix().startswith(
                         ("group_", "figures/")))
    assert written, "the group level wrote nothing"
    undocumented = [rel for rel in written if not any(e.matches(rel) for e in entries)]
    assert not undocumented, f"docs/outputs.md's tree lacks {undocumented}"
    stale = [e.pattern for e in entries
             if not e.optional and not any(e.matches(rel) for rel in written)]
    assert not stale, f"docs/outputs.md's tree lists files the group level does not write: {stale}"


def test_bundled_demo_model_is_named_and_cautioned(tmp_path) -> None:
    """Predictions of the bundled demo model are named as such, with a caution in the report;
    any other model is named by its sha256 and gets no such note."""
    from bids_stroke.model.bundled import bundled_sha256

    caution = "trained on synthetic phantoms"
    other = make_synthetic_output(tmp_path / "other", 4, conditions=CONDS, seed=1)
    page = run_group(other, n_boot=100).read_text()
    assert "model sha256 synthetic" in page and caution not in page

    demo = make_synthetic_output(tmp_path / "demo", 4, conditions=CONDS, seed=1)
    record_commits(demo, model_sha256=bundled_sha256())
    page = html.unescape(run_group(demo, n_boot=100).read_text())
    assert f"bids_stroke bundled demo model (sha256 {bundled_sha256()[:12]})" in page
    assert caution in page


def test_participant_warnings_reach_the_group_report(tmp_path) -> None:
    """Warnings the participant level recorded (manifests) head the findings, once each with the
    number of images they concern; the bundled model's caution is not repeated beside them."""
    from bids_stroke.model.bundled import DEMO_MODEL_WARNING, bundled_sha256

    out = make_synthetic_output(tmp_path / "out", 4, conditions=CONDS, seed=1)
    record_commits(out, model_sha256=bundled_sha256(),
                   warnings=["modality mismatch: T2w images given to a model whose input is "
                             "T1w", DEMO_MODEL_WARNING])
    page = html.unescape(run_group(out, n_boot=100).read_text())
    box = page[page.index('<div class="warnings"'):]
    box = box[:box.index("</div>")]
    assert page.index('id="findings"') < page.index('<div class="warnings"')
    assert ("Participant level (4 image(s)): modality mismatch: T2w images given to a "
            "model whose input is T1w.") in box
    assert f"Participant level (4 image(s)): {DEMO_MODEL_WARNING}." in box
    assert page.count("trained on synthetic phantoms") == 1


def _ties_reference() -> dict[tuple[str, str], tuple[float, float, float, float]]:
    """(case, digits) -> (p, estimate, ci_low, ci_high) from tests/data/ties_reference.out."""
    out = {}
    for line in (Path(__file__).parent / "data" / "ties_reference.out").read_text().splitlines():
        name, digits, *values = line.split()
        out[(name, digits)] = tuple(float(v) for v in values)
    return out


def test_decimal_ties_give_rs_p_values(tmp_path) -> None:
    """Differences equal in decimal but not in binary (participant means of 3 sessions) tie
    after rounding to 7 significant digits, as in R with digits.rank = 7: the group table's p
    is R's p with the ties (0.0318, 0.00207), not the 'exact' p without them (0.0296, 0.00102)."""
    out = make_synthetic_output(tmp_path, 20, seed=5, sessions=["1", "2", "3"])
    run_group(out, metrics=["dice", "specificity", "accuracy"], n_boot=0)
    wil = pd.read_csv(out / "group_desc-wilcoxon_stats.tsv", sep="\t").set_index(
        ["metric", "condition_a", "condition_b"])
    ref = _ties_reference()
    for metric, a, b in (("specificity", "crude3", "thick5mm"),
                         ("accuracy", "linear2", "kspace4")):
        row = wil.loc[(metric, a, b)]
        p7, *_ = ref[(f"{metric}_{a}_{b}", "7")]
        p_exact, *_ = ref[(f"{metric}_{a}_{b}", "Inf")]
        assert row["method"] == "asymptotic" and row["digits_rank"] == 7
        assert row["p"] == pytest.approx(p7, rel=1e-10) and row["p"] > p_exact
        units = S.aggregate_units(collect.read_segmetrics(out), list(collect.METRIC_COLUMNS))
        w = units.pivot(index="participant_id", columns="desc", values=metric)
        for digits, key in ((None, "Inf"), (7, "7")):
            p, est, lo, hi = ref[(f"{metric}_{a}_{b}", key)]
            res = S.wilcoxon_signed_rank(w[a].to_numpy(), w[b].to_numpy(), n_boot=0,
                                         digits_rank=digits)
            assert res["p"] == pytest.approx(p, rel=1e-10)
            from bids_stroke.group.hodges_lehmann import signed_rank_shift

            hl = signed_rank_shift((w[a] - w[b]).to_numpy(), digits_rank=digits)
            assert (hl.estimate, hl.ci_low, hl.ci_high) == pytest.approx((est, lo, hi),
                                                                         abs=1e-10)


def test_methods_boilerplate_is_generated_from_the_run(tmp_path) -> None:
    out = make_synthetic_output(tmp_path, 8, conditions=CONDS, seed=1)
    run_group(out, metrics=["dice", "hd95"], n_boot=100, seed=3, alpha=0.05)
    md = (out / "group_methods.md").read_text()
    page = html.unescape((out / "group_methods.html").read_text())
    report = html.unescape((out / "group_report.html").read_text())
    paragraphs = [p for p in md.split("\n\n") if p and not p.startswith(("#", "*", "1."))]
    for p in paragraphs[:-1]:  # the same text in the page and in the report
        assert p.strip() in page and p.strip() in report
    assert "8 participants" in md and "native (native" in md and "crude2 (crude:2" in md
    assert "Dice \u00b10.05 (higher is better)" in md and "95%" in md  # 1 - 2 alpha / 2
    assert "seed 3" in md and "100 resamples" in md and "Holm" in md
    refs = md[md.index("## References"):]
    for name in ("Hodges JL, Lehmann EL", "Holm S", "Bauer DF", "Schuirmann DJ",
                 "Gorgolewski KJ", "Virtanen P", "Field CA, Welsh AH", "Bland JM"):
        assert name in refs, name
    assert "Brunner E" not in refs  # no dataset comparison in this run
    cited = {int(n) for group in re.findall(r"\[([\d, ]+)\]", md[:md.index("## References")])
             for n in group.split(", ")}
    assert cited == set(range(1, len(re.findall(r"^\d+\. ", refs, re.M)) + 1))  # all, only
    # other settings, other text
    run_group(out, metrics=["dice", "hd95"], n_boot=100, seed=3, alpha=0.1,
              margins={"dice": 0.03, "hd95": 2.0}, digits_rank=None, bland_altman="raw")
    md2 = (out / "group_methods.md").read_text()
    assert "Dice \u00b10.03 (higher is better)" in md2 and "HD95 \u00b12 (lower is better)" in md2
    assert "80%" in md2 and "exactly (binary values)" in md2 and "in ml" in md2
    assert md2 != md


def test_cli_primary_and_margins(tmp_path, capsys) -> None:
    from bids_stroke.cli.run import main

    out = make_synthetic_output(tmp_path / "out", 6, conditions=CONDS, seed=1)
    bids = tmp_path / "bids"
    bids.mkdir()
    assert main([str(bids), str(out), "group", "--margin", "hd95=2", "--margin",
                 "dice=0.03"]) == 0
    eq = pd.read_csv(out / "group_desc-equivalence_stats.tsv", sep="\t")
    margins = eq.groupby("metric")["margin"].first().to_dict()
    assert margins == {"dice": 0.03, "hd95": 2.0}  # added to the study file's dice margin
    assert list(eq["metric"])[:2] == ["dice", "dice"]  # primary first
    assert main([str(bids), str(out), "group", "--primary", "hd95", "--margin",
                 "hd95=2"]) == 0
    eq = pd.read_csv(out / "group_desc-equivalence_stats.tsv", sep="\t")
    assert eq.set_index("metric")["family"].to_dict() == {"hd95": "confirmatory",
                                                          "dice": "exploratory"}
    capsys.readouterr()
    assert main([str(bids), str(out), "group", "--primary", "hd95"]) == 64
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "hd95 has no margin" in err[0] and "--margin hd95=" in err[0]
    assert main([str(bids), str(out), "group", "--margin", "dice"]) == 64
    assert "METRIC=VALUE" in capsys.readouterr().err
    assert main([str(bids), str(out), "group", "--margin", "dice=-1"]) == 64
    study = tmp_path / "study.yml"
    study.write_text("conditions: [native, crude:2]\ngroup:\n  metrics: [dice]\n"
                     "  primary: hd95\n")
    assert main([str(bids), str(out), "group", "--study", str(study)]) == 64
    assert "group.primary hd95 has no margin" in capsys.readouterr().err


def test_cross_condition_dataset_comparison(tmp_path) -> None:
    """--compare ISLES=DIR:native compares ISLES native with every ATLAS condition (the
    original study's 'ISLES vs crude-ATLAS' and 'vs linear-ATLAS'); the unit sentence names
    each dataset's own counts."""
    from bids_stroke.cli.run import main

    atlas = make_synthetic_output(tmp_path / "atlas", 12, conditions=CONDS, seed=1,
                                  sessions=["1", "2"])
    isles = make_synthetic_output(tmp_path / "isles", 7, conditions=CONDS[:1], seed=2)
    bids = tmp_path / "bids"
    bids.mkdir()
    assert main([str(bids), str(atlas), "group", "--compare", f"ISLES={isles}:native",
                 f"ATLAS={atlas}"]) == 0
    st = pd.read_csv(atlas / "group_desc-datasets_stats.tsv", sep="\t")
    dice = st[st.metric == "dice"]
    assert list(zip(dice.dataset_a, dice.desc_a, dice.dataset_b, dice.desc_b,
                    strict=True)) == [("ISLES", "native", "ATLAS", c[0]) for c in CONDS]
    assert dice["bm_method"].str.startswith("permutation").all()  # 7 ISLES participants
    text = html.unescape((atlas / "group_report.html").read_text())
    assert ("Statistics use one value per participant: ISLES: 7 participants, one image each; "
            "ATLAS: 12 participants (24 images;") in text
    assert re.search(r"Dice (was (higher|lower) in|did not differ significantly between) "
                     r"ISLES at native \(median \S+, n = 7\)", text)
    study = tmp_path / "study.yml"
    study.write_text("conditions: [native, crude:2, linear:2]\ngroup:\n  metrics: [dice]\n"
                     f"  compare: {{ISLES: {isles}, ATLAS: {atlas}}}\n"
                     "  pairs: [[ISLES:native, ATLAS:linear2]]\n")
    assert main([str(bids), str(tmp_path / "res"), "group", "--study", str(study)]) == 0
    st = pd.read_csv(tmp_path / "res" / "group_desc-datasets_stats.tsv", sep="\t")
    assert list(zip(st.desc_a, st.desc_b, strict=True)) == [("native", "linear2")]
    study.write_text(study.read_text().replace("linear2", "thick5mm"))
    assert main([str(bids), str(tmp_path / "res"), "group", "--study", str(study)]) == 65
