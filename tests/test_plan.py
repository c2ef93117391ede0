"""The output plan is a pure function: names, sidecars and sources of a subject's outputs."""

from __future__ import annotations

import json

from bids_stroke.outputs.plan import ConditionOutputs, ImageOutputs, plan_image

TPL = "MNI152NLin2009aSym"


def _subject(**kw) -> ImageOutputs:
    base = dict(
        subject="01", session="1", entities={}, suffix="T1w", bids_dir="/data",
        source_image="/data/sub-01/ses-1/anat/sub-01_ses-1_T1w.nii.gz",
        source_mask="/data/derivatives/m/sub-01_ses-1_label-L_desc-lesion_mask.nii.gz",
        conditions=[
            ConditionOutputs("native", "native", "as acquired", {}, "/w/p0.nii", "/w/m0.nii",
                             images={"T1w": "/w/i0.nii"}),
            ConditionOutputs("crude2", "crude:2", "crude", {"factors": [2, 2, 2]},
                             "/w/p1.nii", "/w/m1.nii", images={"T1w": "/w/i1.nii"}),
        ],
        model_sha256="ab" * 32, model_info={"kind": "bids_stroke"}, threshold=0.5,
        metrics_tsv="/w/seg.tsv", metrics_json="/w/seg.json", lesions_tsv="/w/les.tsv",
        lesions_json="/w/les.json", report="/w/report.html",
    )
    base.update(kw)
    return ImageOutputs(**base)


def _names(files):
    return {f.rel for f in files}


def _sidecar(files, suffix):
    (f,) = [f for f in files if f.rel.endswith(suffix)]
    return json.loads(f.content)


def test_template_space_input_names():
    files, tables = plan_image(_subject(space=TPL, preproc="/w/pre.nii"))
    a = f"sub-01/ses-1/anat/sub-01_ses-1_space-{TPL}"
    names = _names(files)
    assert f"{a}_desc-preproc_T1w.nii.gz" in names
    assert f"{a}_desc-crude2_T1w.nii.gz" in names
    assert f"{a}_desc-native_T1w.nii.gz" not in names  # native = preproc itself
    assert {f"{a}_label-L_desc-{c}_{s}.nii.gz" for c in ("native", "crude2")
            for s in ("probseg", "mask")} <= names
    # metrics computed on the template grid carry its space
    assert [t.rel for t in tables] == [f"{a}_label-L_segmetrics.tsv", f"{a}_label-L_lesions.tsv"]
    assert "sub-01_ses-1.html" in names
    mask = _sidecar(files, "desc-crude2_mask.json")
    assert mask["SpatialReference"] == TPL and mask["Threshold"] == 0.5
    assert mask["Sources"] == [f"bids::{a}_desc-crude2_T1w.nii.gz"]
    # intermediates stored uncompressed are gzip-compressed into .nii.gz outputs
    assert all(f.compress for f in files if f.source and f.source.endswith(".nii"))


def test_registered_input_metrics_named_for_the_native_grid():
    files, tables = plan_image(_subject(
        space=TPL, preproc="/w/pre.nii", registered=True, registration="affine",
        conditions=[ConditionOutputs("native", "native", "x", {}, "/w/p.nii", "/w/m.nii",
                                     native_mask="/w/nm.nii")],
        forward_transforms=["/w/xfm_affine.mat"], inverse_transforms=["/w/xfm_affine.mat"],
        inverse_invert_flags=[True]))
    names = _names(files)
    assert tables[0].rel == "sub-01/ses-1/anat/sub-01_ses-1_label-L_segmetrics.tsv"
    assert "sub-01/ses-1/anat/sub-01_ses-1_label-L_desc-native_mask.nii.gz" in names
    xfm = [n for n in names if n.endswith("_xfm.mat")]
    # the affine's inverse is the same file inverted on the fly: one file, direction stated
    assert xfm == [f"sub-01/ses-1/anat/sub-01_ses-1_from-T1w_to-{TPL}_mode-image_xfm.mat"]
    side = _sidecar(files, "_xfm.json")
    assert "maps T1w (moving) to" in side["Direction"] and side["Invert"] is False


def test_syn_writes_the_true_inverse_warp_once():
    files, _ = plan_image(_subject(
        space=TPL, preproc="/w/pre.nii", registered=True, registration="syn",
        forward_transforms=["/w/warp.nii.gz", "/w/aff.mat"],
        inverse_transforms=["/w/aff.mat", "/w/invwarp.nii.gz"],
        inverse_invert_flags=[True, False]))
    names = sorted(n for n in _names(files) if "_xfm." in n and not n.endswith(".json"))
    assert names == sorted([
        f"sub-01/ses-1/anat/sub-01_ses-1_from-T1w_to-{TPL}_mode-image_desc-step0_xfm.nii.gz",
        f"sub-01/ses-1/anat/sub-01_ses-1_from-T1w_to-{TPL}_mode-image_desc-step1_xfm.mat",
        f"sub-01/ses-1/anat/sub-01_ses-1_from-{TPL}_to-T1w_mode-image_xfm.nii.gz",
    ])


def test_native_space_multichannel_names():
    files, tables = plan_image(_subject(
        suffix="dwi", space=None,
        source_image="/data/sub-01/ses-1/dwi/sub-01_ses-1_dwi.nii.gz",
        channel_sources={"dwi": "/data/sub-01/ses-1/dwi/sub-01_ses-1_dwi.nii.gz",
                         "adc": "/data/sub-01/ses-1/dwi/sub-01_ses-1_adc.nii.gz"},
        conditions=[ConditionOutputs("crude2", "crude:2", "c", {}, "/w/p.nii", "/w/m.nii",
                                     images={"dwi": "/w/d.nii", "adc": "/w/a.nii"})]))
    names = _names(files)
    assert {"sub-01/ses-1/dwi/sub-01_ses-1_desc-crude2_dwi.nii.gz",
            "sub-01/ses-1/dwi/sub-01_ses-1_desc-crude2_adc.nii.gz",
            "sub-01/ses-1/dwi/sub-01_ses-1_label-L_desc-crude2_mask.nii.gz"} <= names
    assert not any("space-" in n for n in names)
    assert tables[0].rel == "sub-01/ses-1/dwi/sub-01_ses-1_label-L_segmetrics.tsv"
    mask = _sidecar(files, "desc-crude2_mask.json")
    assert mask["Sources"] == ["bids::sub-01/ses-1/dwi/sub-01_ses-1_desc-crude2_dwi.nii.gz",
                               "bids::sub-01/ses-1/dwi/sub-01_ses-1_desc-crude2_adc.nii.gz"]
    assert "SpatialReference" not in mask


def test_files_are_tagged_with_their_condition():
    files, _ = plan_image(_subject(space=TPL, preproc="/w/pre.nii"))
    tags = {f.rel.rsplit("/", 1)[-1]: f.conditions for f in files}
    assert tags[f"sub-01_ses-1_space-{TPL}_label-L_desc-crude2_mask.nii.gz"] == ("crude2",)
    assert tags[f"sub-01_ses-1_space-{TPL}_desc-preproc_T1w.nii.gz"] == ()


def test_warnings_reach_every_model_output_sidecar():
    files, _ = plan_image(_subject(space=TPL, preproc="/w/pre.nii",
                                     warnings=["modality mismatch: T2w into a T1w model"]))
    mask = _sidecar(files, "desc-native_mask.json")
    assert mask["Warnings"] == ["modality mismatch: T2w into a T1w model"]


def test_derivatives_credit_the_source_authors_then_the_software(atlas_layout) -> None:
    """``Authors`` of the derivatives: the input's (here from ATLAS-like cohort folders, with
    no description at the root), then bids_stroke's developers, each once."""
    from bids_stroke.outputs.derivatives import SOFTWARE_AUTHORS, dataset_description

    for cohort in ("R001", "R002"):
        path = atlas_layout / cohort / "dataset_description.json"
        if path.is_file():
            desc = json.loads(path.read_text())
            path.write_text(json.dumps({**desc, "Authors": ["A. Author", "B. Author"]}))
    got = dataset_description(atlas_layout, "atlas_resolution")
    assert got["Authors"] == ["A. Author", "B. Author", SOFTWARE_AUTHORS]
    assert "CITATION.cff" in got["HowToAcknowledge"]


def test_probseg_sidecar_states_its_encoding():
    files, _ = plan_image(_subject(space=TPL, probseg_encoding="compact"))
    enc = _sidecar(files, "desc-crude2_probseg.json")["ProbabilityEncoding"]
    assert enc["Mode"] == "compact" and enc["DataType"] == "uint16" and enc["Floor"] == 1e-4
    assert "ProbabilityEncoding" not in _sidecar(files, "desc-crude2_mask.json")
    full, _ = plan_image(_subject(space=TPL, probseg_encoding="full"))
    assert _sidecar(full, "desc-crude2_probseg.json")["ProbabilityEncoding"]["Mode"] == "full"
    # no probability map: only masks are planned
    none = [ConditionOutputs("native", "native", "as acquired", {}, None, "/w/m0.nii")]
    files, _ = plan_image(_subject(conditions=none, probseg_encoding="none"))
    assert not [f for f in files if "probseg" in f.rel]
