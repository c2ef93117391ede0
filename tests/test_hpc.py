"""Scale-out helpers: ``participant --prepare`` and the SLURM bookkeeping of bids_stroke.hpc."""

from __future__ import annotations

from pathlib import Path

from bids_stroke.cli.run import main


def test_prepare_writes_dataset_files_and_database_only(plain_layout: Path, tmp_path: Path):
    out, db = tmp_path / "out", tmp_path / "db"
    code = main([str(plain_layout), str(out), "participant", "--prepare",
                 "--bids-database-dir", str(db), "--skip-bids-validation",
                 "--conditions", "native", "crude:2"])
    assert code == 0
    for name in ("dataset_description.json", "descriptions.tsv", ".bidsignore",
                 ".bids_stroke.json"):
        assert (out / name).is_file(), name
    rows = (out / "descriptions.tsv").read_text().splitlines()
    assert {r.split("\t")[0] for r in rows[1:]} == {"desc-preproc", "desc-native",
                                                     "desc-crude2"}
    assert list(db.rglob("*.sqlite")), "pybids database built"
    assert not list(out.glob("sub-*")), "nobody processed"


def test_prepare_is_participant_only(plain_layout: Path, tmp_path: Path, capsys):
    code = main([str(plain_layout), str(tmp_path / "out"), "participant", "group", "--prepare",
                 "--skip-bids-validation"])
    assert code == 64
    assert "--prepare goes with the participant level only" in capsys.readouterr().err
