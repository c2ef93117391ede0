"""Group level: collection of derivatives, run_group outputs and the group report."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bids_stroke.group import collect
from bids_stroke.group.run import GroupInputError, run_group
from bids_stroke.group.synthetic import DEFAULT_SYNTHETIC_CONDITIONS, make_synthetic_output

CONDS = DEFAULT_SYNTHETIC_CONDITIONS[:3]
TSVS = ["group_segmetrics.tsv", "group_desc-summary_segmetrics.tsv",
        "group_desc-sizebins_segmetrics.tsv", "group_desc-wilcoxon_stats.tsv",
        "group_desc-friedman_stats.tsv", "group_desc-lesiondetection_segmetrics.tsv"]
FIGS = ["bars", "distributions", "paired", "dice-vs-resolution", "bland-altman"]


@pytest.fixture(scope="module")
def group_out(tmp_path_factory) -> tuple[Path, Path]:
    out = make_synthetic_output(tmp_path_factory.mktemp("out"), 12, conditions=CONDS, seed=3)
    return out, run_group(out, n_boot=200, seed=7)


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

    long = pd.read_csv(out / "group_segmetrics.tsv", sep="\t", na_values="n/a",
                       keep_default_na=False)
    assert len(long) == 12 * 3 * len(collect.METRIC_COLUMNS)
    assert list(long.columns) == ["participant_id", "session_id", "image_id", "desc", "condition",
                                  "effective_resolution_mm", "metric", "value"]
    seg = collect.read_segmetrics(out)
    row = seg[(seg.participant_id == "sub-0004") & (seg.desc == "crude2")].iloc[0]
    got = long[(long.participant_id == "sub-0004") & (long.desc == "crude2")
               & (long.metric == "dice")]["value"].item()
    assert got == pytest.approx(row["dice"])

    wil = pd.read_csv(out / "group_desc-wilcoxon_stats.tsv", sep="\t")
    assert len(wil) == 4 * 3  # 4 default metrics x 3 pairs
    assert set(wil["metric"]) == {"dice", "hd95", "lesion_f1", "abs_volume_diff_ml"}
    fr = pd.read_csv(out / "group_desc-friedman_stats.tsv", sep="\t")
    assert len(fr) == 4 and (fr["k"] == 3).all()
    summ = pd.read_csv(out / "group_desc-summary_segmetrics.tsv", sep="\t")
    assert {"n", "mean", "std", "min", "q1", "median", "q3", "iqr", "max"} <= set(summ.columns)


def test_report_contains_every_table_and_figure(group_out) -> None:
    out, report = group_out
    text = report.read_text()
    assert text.count("data:image/png;base64,") == len(FIGS)
    for tid in ["friedman", "wilcoxon", "sizebins", "lesiondetection", "summary-dice",
                "summary-hd95", "summary-lesion_f1", "summary-abs_volume_diff_ml"]:
        assert f"id='{tid}'" in text or f'id="{tid}"' in text, tid
    assert re.search(r"Segmentation metrics of 12 participant\(s\)", text)
    assert "alpha = 0.05" in text and "200 resamples" in text and "seed 7" in text
    assert "Holm" in text and "Benjamini-Hochberg" in text
    wil = pd.read_csv(out / "group_desc-wilcoxon_stats.tsv", sep="\t")
    counts = wil["method"].value_counts(sort=False)
    assert "p-value methods used in this run: " + ", ".join(
        f"{m} ({n} tests)" for m, n in counts.items()) in text
    assert set(counts.index) <= {"exact", "permutation", "asymptotic"}
    assert "numpy" in text and "scipy" in text
    for desc, spec, _, description in CONDS:  # conditions with their descriptions
        assert desc in text and spec in text
        assert description.replace("(", "").split()[0] in text
    assert "<script" not in text and 'src="http' not in text  # self-contained, static


def test_deterministic(group_out, tmp_path) -> None:
    out, _ = group_out
    other = make_synthetic_output(tmp_path / "o", 12, conditions=CONDS, seed=3)
    run_group(other, n_boot=200, seed=7)
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
    run_group(out, n_boot=50)
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
    assert "1 participant(s) (2 participant-session(s))" in report.read_text()
    with pytest.raises(GroupInputError, match="participant"):
        run_group(out, participant_label="9999")
    with pytest.raises(ValueError, match="unknown metric"):
        run_group(out, metrics=["dice", "nope"])


def test_collect_validates_columns(tmp_path) -> None:
    out = make_synthetic_output(tmp_path, 3, conditions=CONDS, lesions=False)
    f = next((out / "sub-0002" / "anat").glob("*_segmetrics.tsv"))
    df = pd.read_csv(f, sep="\t", dtype=str, keep_default_na=False).drop(columns="hd95")
    df.to_csv(f, sep="\t", index=False)
    with pytest.raises(GroupInputError, match=r"sub-0002.*missing column\(s\) hd95"):
        collect.read_segmetrics(out)
    assert collect.read_lesions(out) is None


def test_collect_fast_path_equals_per_file(tmp_path) -> None:
    out = make_synthetic_output(tmp_path, 5, conditions=CONDS)
    fast = collect.read_segmetrics(out)
    f = next((out / "sub-0003" / "anat").glob("*_segmetrics.tsv"))
    df = pd.read_csv(f, sep="\t", dtype=str, keep_default_na=False)
    df[df.columns[::-1]].to_csv(f, sep="\t", index=False)  # other column order: slow path
    slow = collect.read_segmetrics(out)
    pd.testing.assert_frame_equal(fast, slow[fast.columns])
    assert fast["session_id"].eq("n/a").all()
    assert np.issubdtype(fast["dice"].dtype, np.floating)
    bad = next((out / "sub-0004" / "anat").glob("*_segmetrics.tsv"))
    df = pd.read_csv(bad, sep="\t", dtype=str, keep_default_na=False)
    df.loc[0, "dice"] = "abc"
    df.to_csv(bad, sep="\t", index=False)
    with pytest.raises(GroupInputError, match=r"sub-0004.*non-numeric value 'abc'"):
        collect.read_segmetrics(out)


def test_metric_columns_match_metrics_module() -> None:
    metrics = pytest.importorskip("bids_stroke.metrics")
    assert tuple(metrics.METRIC_COLUMNS) == collect.METRIC_COLUMNS


def test_lazy_package_exports() -> None:
    import bids_stroke.group as group

    assert group.run_group is run_group and group.GroupInputError is GroupInputError
    with pytest.raises(AttributeError):
        _ = group.nope
