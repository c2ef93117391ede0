"""The group report's participants section: Tukey-fence outliers of the paired change
(hand-computed) and every unit linked to its subject reports."""

from __future__ import annotations

import html
import json
import re

import numpy as np
import pandas as pd
import pytest

from bids_stroke.group.participants import paired_outliers, participant_table, subject_reports
from bids_stroke.group.run import run_group
from bids_stroke.group.synthetic import make_synthetic_output


def _units(native, linear):
    rows = []
    for i, (a, b) in enumerate(zip(native, linear, strict=True), start=1):
        for desc, v in (("native", a), ("linear2", b)):
            rows.append({"participant_id": f"sub-{i:02d}", "session_id": "n/a",
                         "image_id": f"sub-{i:02d}", "desc": desc, "dice": v, "n_images": 1})
    return pd.DataFrame(rows)


def test_outliers_are_outside_tukeys_fences_of_the_paired_change() -> None:
    # changes -0.05 -0.04 -0.06 -0.05 -0.05 -0.90; sorted: -0.90 -0.06 -0.05 -0.05 -0.05 -0.04
    # Q1 (position 1.25) = -0.0575, Q3 (position 3.75) = -0.05, IQR 0.0075
    # fences: -0.0575 - 1.5 * 0.0075 = -0.06875 and -0.05 + 0.01125 = -0.03875
    units = _units([0.90] * 6, [0.85, 0.86, 0.84, 0.85, 0.85, 0.00])
    out = paired_outliers(units, ["dice"], ["native", "linear2"])
    assert len(out) == 1
    row = out.iloc[0]
    assert (row["image_id"], row["side"], row["condition_b"]) == ("sub-06", "below", "linear2")
    assert row["value_a"] == 0.90 and row["value_b"] == 0.0
    assert row["change"] == pytest.approx(-0.90)
    assert (row["q1"], row["q3"]) == (pytest.approx(-0.0575), pytest.approx(-0.05))
    assert row["fence"] == pytest.approx(-0.06875)
    # too few units with both values: not screened
    assert paired_outliers(units.iloc[:6], ["dice"], ["native", "linear2"]).empty
    # a rise far above the others is flagged on the other side
    rise = paired_outliers(_units([0.5] * 6, [0.5, 0.51, 0.49, 0.5, 0.5, 0.99]), ["dice"],
                           ["native", "linear2"])
    assert list(rise["side"]) == ["above"] and list(rise["image_id"]) == ["sub-06"]


def test_participant_table_links_each_unit_to_its_reports() -> None:
    units = _units([0.9, 0.8, 0.7, 0.6], [0.8, 0.7, 0.6, 0.1])
    reports = {"sub-01_ses-1": ["sub-01_ses-1.html"], "sub-01_ses-2": ["sub-01_ses-2.html"],
               "sub-02": ["sub-02.html"]}
    table, keys, links = participant_table(units, ["native", "linear2"], "dice", reports)
    assert keys == ["sub-01", "sub-02", "sub-03", "sub-04"]
    assert links["sub-01"] == ["sub-01_ses-1.html", "sub-01_ses-2.html"]  # both sessions
    assert links["sub-02"] == ["sub-02.html"] and links["sub-03"] == []
    np.testing.assert_allclose(table["dice linear2"], [0.8, 0.7, 0.6, 0.1])


def test_group_report_names_every_participant_and_the_outliers(tmp_path) -> None:
    out = make_synthetic_output(tmp_path / "out", 8, seed=3, reports=True)
    seg = next(out.glob("sub-0005/**/*_segmetrics.tsv"))
    lines = seg.read_text().splitlines()
    col = lines[0].split("\t").index("dice")
    cells = lines[2].split("\t")
    cells[col] = "0"  # sub-0005 loses its lesion under the second condition
    seg.write_text("\n".join([*lines[:2], "\t".join(cells), *lines[3:]]) + "\n")
    from bids_stroke.group.synthetic import record_commits

    record_commits(out)
    text = html.unescape(run_group(out, metrics=["dice"], n_boot=20).read_text())
    section = text[text.index('<section id="participants">'):]
    section = section[:section.index("</section>")]
    for i in range(1, 9):
        assert f'<a href="sub-{i:04d}.html">sub-{i:04d}</a>' in section
    outliers = section[section.index("id='outliers'"):section.index("id='participants'")]
    assert re.search(r'sub-0005\.html">sub-0005</a></td><td class="t">Dice coefficient</td>'
                     r'<td class="t">native</td><td class="t">crude2</td><td class="n">[\d.]+'
                     r'</td><td class="n">0</td>', outliers), outliers
    assert "below Q1 - 1.5 IQR" in outliers
    assert subject_reports([]) == {}
    table = pd.read_csv(out / "group_desc-outliers_segmetrics.tsv", sep="\t")
    first = table.iloc[0]  # most extreme first
    assert (first["image_id"], first["metric"], first["value_b"]) == ("sub-0005", "dice", 0.0)
    assert set(json.loads((out / "group_desc-outliers_segmetrics.json").read_text())) == set(
        table.columns)
