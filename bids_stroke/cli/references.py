"""The participant level's reference checks (cheap: no model, no pybids, no nipype).

With ``--reference mask`` (the default) every image needs a lesion mask. A dataset without any
is refused before anything slow starts (exit 66, one line naming where masks were looked for
and the label-free alternative); images without a mask among images with one are left out and
listed in one line. With ``prediction``/``auto`` the reference condition must be one of the
study's conditions (exit 64).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from bids_stroke.cli import parser as P
from bids_stroke.cli.config import CLIError
from bids_stroke.core.settings import Settings

LOGGER = logging.getLogger("bids_stroke")
ALTERNATIVE = ("score each image against the model's own native-resolution prediction with "
               "--reference prediction")


def check_reference_settings(settings: Settings) -> None:
    """Refuse (exit 64) a prediction reference whose condition the study does not run."""
    from bids_stroke.metrics.reference import ReferenceError, check_reference_condition

    study = settings.study
    try:
        check_reference_condition(study.reference, study.reference_condition,
                                  list(study.conditions))
    except ReferenceError as exc:
        raise CLIError(str(exc), P.EXIT_USAGE) from None


def where_masks_are_looked_for(settings: Settings) -> str:
    """``BIDS_DIR (beside the images), BIDS_DIR/derivatives, ...`` in words."""
    from bids_stroke.inputs.discovery import mask_search_places

    places = mask_search_places(settings.data.bids_dir, settings.data.derivatives)
    roots = [p for p in places if p.name != "derivatives" and p not in
             {Path(d) for d in settings.data.derivatives}]
    others = [p for p in places if p not in roots]
    if not others:
        others = [Path(settings.data.bids_dir) / "derivatives"]
        return ", ".join(f"{p} (beside the images)" for p in roots) + f", {others[0]} (absent)"
    return (", ".join(f"{p} (beside the images)" for p in roots)
            + "".join(f", {p}" for p in others))


def refuse_without_any_mask(settings: Settings) -> None:
    """With ``--reference mask``, exit 66 in milliseconds when the dataset holds no lesion
    mask at all (checked again, per selected image, after discovery)."""
    from bids_stroke.inputs.discovery import DiscoveryError, any_lesion_mask, validate_dataset

    if settings.study.reference != "mask":
        return
    data = settings.data
    try:
        if not data.skip_bids_validation and validate_dataset(data.bids_dir):
            return  # the full check reports the invalid dataset (exit 16)
        exclude = [data.output_dir, *([settings.execution.work_dir]
                                      if settings.execution.work_dir else [])]
        if any_lesion_mask(data.bids_dir, derivatives=data.derivatives, exclude=exclude):
            return
        where = where_masks_are_looked_for(settings)
    except DiscoveryError as exc:
        raise CLIError(str(exc), exc.exit_code) from exc
    raise CLIError(f"no lesion mask found: looked in {where}; --reference mask (the default) "
                   f"scores every image against its mask: {ALTERNATIVE}, or give the mask "
                   "folder with --derivatives", P.EXIT_NO_INPUT)


def split_by_mask(settings: Settings, subjects: Sequence) -> tuple[list, list]:
    """Say in one line how many selected images have a mask, and which are scored against
    what; returns ``(images to run, images left out)``: with ``--reference mask`` the images
    without a mask are left out (listed in one line), and none with a mask is exit 66."""
    with_mask = [s for s in subjects if s.mask is not None]
    without = [s for s in subjects if s.mask is None]
    study = settings.study
    LOGGER.info("Found %d input image(s): %d with a lesion mask, %d without; reference: %s",
                len(subjects), len(with_mask), len(without), _reference_words(settings,
                                                                              len(with_mask),
                                                                              len(without)))
    if study.reference == "auto" and without:
        LOGGER.info("auto reference: %d image(s) without a mask are scored against the "
                    "model's prediction at %s: %s", len(without), study.reference_condition,
                    " ".join(s.key for s in without))
    if study.reference != "mask":
        return list(subjects), []
    if not with_mask:
        raise CLIError(f"none of the {len(subjects)} selected image(s) has a lesion mask: "
                       f"looked in {where_masks_are_looked_for(settings)}; {ALTERNATIVE}, or "
                       "give the mask folder with --derivatives", P.EXIT_NO_INPUT)
    if without:
        LOGGER.warning("%d image(s) without a lesion mask are not run (--reference mask): "
                       "%s; --reference auto scores them against the model's own "
                       "native-resolution prediction", len(without),
                       " ".join(s.key for s in without))
    return with_mask, without


def _reference_words(settings: Settings, n_mask: int, n_without: int) -> str:
    study = settings.study
    pred = f"the model's prediction at {study.reference_condition}"
    if study.reference == "mask":
        return "the lesion mask"
    if study.reference == "prediction":
        return pred + (" (the masks are not used)" if n_mask else "")
    return (f"auto: the lesion mask for {n_mask} image(s), {pred} for {n_without} "
            "(analysed separately)")
