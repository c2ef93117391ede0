"""``bids_stroke score BIDS_DIR OUT --predictions PATTERN --tool-name NAME``.

Scores the lesion masks another tool made from the exported conditions
(``bids_stroke export``) and writes the derivatives of a native-space model run into ``OUT``
(see :mod:`bids_stroke.external.score`), so ``bids_stroke BIDS_DIR OUT group`` works unchanged.

Every check comes before any write. A prediction that is unreadable, on another grid, not
binary (without ``--threshold``), ambiguous, or made for a condition that was not exported
stops the run: one line per file, nothing written (exit 65). A *missing* prediction is a gap:
the subject's other conditions are scored, the gap is printed and recorded
(``OUT/logs/score-<run>.tsv``, the subject's report and sidecars) and the exit code is 66.

``--reference prediction`` scores each degraded condition against the tool's own prediction at
``--reference-condition`` (default native): agreement, for data without lesion masks.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bids_stroke.cli import parser as P
from bids_stroke.cli.common_options import add_common_options, settings_for
from bids_stroke.cli.config import CLIError
from bids_stroke.cli.dataset_files import write_dataset_level
from bids_stroke.cli.formatter import HelpFormatter
from bids_stroke.cli.guard import run_guarded
from bids_stroke.cli.image_loop import ImageLoop
from bids_stroke.cli.inputs import discover
from bids_stroke.core.progress import setup_logging

LOGGER = logging.getLogger("bids_stroke")


def build_parser() -> argparse.ArgumentParser:
    parser = P.ArgumentParser(
        prog="bids_stroke score",
        description="Score lesion masks made by another segmentation tool on the datasets of "
        "'bids_stroke export': the same metric tables, masks, reports and provenance as a "
        "model run, so 'bids_stroke BIDS_DIR OUT group' works unchanged.",
        formatter_class=HelpFormatter,
    )
    add_common_options(parser)
    parser.add_argument(
        "--predictions", required=True, metavar="PATTERN",
        help="where the tool wrote its masks, with placeholders {condition} (the condition "
        "label, i.e. the exported dataset's folder name), {subject}, {session}, {acq}, {run} "
        "and shell wildcards, e.g. 'preds/{condition}/sub-{subject}/ses-{session}/anat/"
        "*_mask.nii.gz'")
    parser.add_argument("--tool-name", required=True, metavar="NAME",
                        help="name of the tool that made the predictions (in every sidecar "
                        "and report)")
    parser.add_argument("--tool-version", default="", metavar="VERSION",
                        help="its version (or container tag/digest); default: none recorded")
    parser.add_argument("--threshold", default=None, metavar="P",
                        help="the predictions are probability maps: probability >= P is "
                        "lesion (default: they must be binary 0/1 masks)")
    parser.add_argument("--exported", type=Path, default=None, metavar="DIR",
                        help="the output folder of 'bids_stroke export' (or its conditions/ "
                        "folder) (default: OUT, i.e. OUT/conditions); score several tools into "
                        "separate OUT folders from one export")
    parser.add_argument("--no-degraded-images", dest="save_degraded", action="store_false",
                        default=None, help="do not copy the exported images into OUT")
    P.add_reference_options(parser)
    return parser


@dataclass
class Found:
    """What the checks found: what to score, the gaps, the refusals."""

    items: list
    gaps: list  # (subject, label, spec, reason)
    problems: list[str]
    rows: list[dict]


def export_folder(given: Path | None, out: Path) -> Path:
    """The folder of exported conditions: ``OUT/conditions`` by default; ``--exported`` may
    name that folder or the output folder of ``bids_stroke export`` (which holds it)."""
    from bids_stroke.external.export import export_root
    from bids_stroke.outputs.commit import state_dir

    if given is None:
        return export_root(out)
    root = Path(given).absolute()
    # no condition label is "conditions": a conditions/ folder with committed subjects is
    # the export's (the export folder may also be this OUT, holding scored subjects)
    if (state_dir(export_root(root)) / "subjects").is_dir():
        return export_root(root)
    return root


def _exported(root: Path):
    from bids_stroke.external.export import exported_manifests
    from bids_stroke.outputs.commit import CommitError

    try:
        manifests = {m.key: m for m in exported_manifests(root)} if root.is_dir() else {}
    except CommitError as exc:
        raise CLIError(str(exc), P.EXIT_BAD_DATA) from exc
    if not manifests:
        raise CLIError(f"no exported conditions in {root}: run 'bids_stroke export BIDS_DIR "
                       "EXPORT_OUT' first, then give --exported EXPORT_OUT (or leave it out "
                       "when the export went into this OUT)", P.EXIT_NO_INPUT)
    specs: dict[str, str] = {}  # label -> spec, in the study's order
    for m in manifests.values():
        for label in m.extra.get("order", sorted(m.conditions)):
            if label in m.conditions:
                specs.setdefault(label, m.conditions[label].spec)
    return manifests, specs


def _labels(settings, opts, specs: dict[str, str]) -> list[str]:
    """Conditions to score: all exported ones, or those of --conditions/--study."""
    if opts.conditions is None and opts.study is None:
        return list(specs)
    labels = [c.label for c in settings.study.conditions]
    unknown = [lab for lab in labels if lab not in specs]
    if unknown:
        raise CLIError(f"condition {unknown[0]} was not exported (exported: "
                       f"{', '.join(specs)}); run 'bids_stroke export' with it first",
                       P.EXIT_USAGE)
    return labels


def _reference(settings, manifests) -> str:
    refs = sorted({str(m.extra.get("reference", "")) for m in manifests.values()})
    wanted = settings.data.modality
    if wanted is not None and wanted not in refs:
        raise CLIError(f"--modality {wanted}: the export's reference image is "
                       f"{', '.join(refs)}; drop --modality or export that modality",
                       P.EXIT_USAGE)
    if wanted is None and len(refs) != 1:
        raise CLIError(f"the export holds several reference modalities ({', '.join(refs)}); "
                       "choose one with --modality", P.EXIT_USAGE)
    return wanted or refs[0]


def _row(subject, label: str, spec: str, status: str, prediction: str = "n/a",
         sha: str = "n/a", detail: str = "") -> dict:
    return {"participant_id": f"sub-{subject.subject}",
            "session_id": f"ses-{subject.session}" if subject.session else "n/a",
            "input": subject.key, "desc": label, "condition": spec, "status": status,
            "prediction": prediction, "sha256": sha, "detail": detail or "n/a"}


def _check_subject(subject, manifest, labels, specs, pattern, tool, root, found,
                   reference) -> None:
    """Find and check every prediction of one subject (appends to ``found``); ``reference``:
    what its predictions are scored against (the mask, or the tool's prediction at the
    reference condition, which must then be there)."""
    import numpy as np

    from bids_stroke.core.digest import file_sha256
    from bids_stroke.degradation import parse_condition
    from bids_stroke.degradation.nifti import load_nifti
    from bids_stroke.external.score import (
        ConditionToScore,
        ScoreError,
        SubjectToScore,
        placeholder_values,
    )
    from bids_stroke.inputs.discovery import AFFINE_ATOL
    from bids_stroke.outputs.commit import verify_file

    source = manifest.extra.get("sources", {}).get(subject.suffix, {})
    if source.get("sha256") != file_sha256(subject.image):
        found.problems.append(f"{subject.image}: changed since it was exported to {root}; "
                              "re-run 'bids_stroke export' for it, re-run the tool, then score")
        return
    # the grid every prediction is scored on: the mask's (the native grid of the image)
    native = subject.image if reference.is_prediction else subject.mask
    mask = load_nifti(native)
    todo, gaps = [], []
    for label in labels:
        if label not in manifest.conditions:
            gaps.append(label)
            found.gaps.append((subject, label, specs[label], "was not exported for it"))
            found.rows.append(_row(subject, label, specs[label], "not_exported"))
            continue
        images = {k: root / v for k, v in manifest.extra.get("images", {}).get(label,
                                                                              {}).items()}
        broken = [p for rel in images.values()
                  if (p := verify_file(root, manifest, rel.relative_to(root).as_posix()))]
        ref_image = images.get(subject.suffix)
        if broken or ref_image is None:
            found.problems.append(f"{root / label}: {broken[0] if broken else 'no image'} "
                                  f"({subject.key}); re-run 'bids_stroke export'")
            continue
        grid = load_nifti(ref_image)
        if grid.shape != mask.shape or not np.allclose(grid.affine, mask.affine,
                                                       atol=AFFINE_ATOL):
            found.problems.append(f"{ref_image}: not on the native grid of {native.name}; "
                                  "re-export with this version of bids_stroke")
            continue
        try:
            hits = _prediction(pattern, subject, label, grid, ref_image, tool.threshold)
        except ScoreError as exc:
            found.problems.append(str(exc))
            continue
        if not hits:
            expected = pattern.glob_for(placeholder_values(pattern, subject, label))
            gaps.append(label)
            found.gaps.append((subject, label, specs[label], f"no file matches {expected}"))
            found.rows.append(_row(subject, label, specs[label], "missing", detail=expected))
            continue
        sha = file_sha256(hits[0])
        todo.append(ConditionToScore(parse_condition(specs[label]), hits[0], sha, images,
                                     ref_image))
        found.rows.append(_row(subject, label, specs[label], "scored", str(hits[0]), sha))
    if reference.is_prediction and todo:
        todo = _with_reference_prediction(subject, reference, todo, gaps, found)
    if todo:
        found.items.append(SubjectToScore(subject, todo, tuple(gaps), reference))


def _prediction(pattern, subject, label: str, grid, ref_image: Path,
                threshold: float | None) -> list[Path]:
    """The tool's prediction of ``subject`` at condition ``label`` (none or one file),
    checked against the exported image ``grid`` (:class:`~bids_stroke.score.ScoreError`
    when several files match or the file is not a prediction on that grid)."""
    from bids_stroke.external.score import ScoreError, load_prediction, placeholder_values

    hits: list[Path] = pattern.find(placeholder_values(pattern, subject, label))
    if len(hits) > 1:
        raise ScoreError(f"{pattern.glob_for(placeholder_values(pattern, subject, label))}"
                         f": {len(hits)} files match for {subject.key} condition {label}"
                         f" ({hits[0].name}, {hits[1].name}); make --predictions "
                         "specific (add {run}/{acq} or more of the file name)")
    if hits:
        load_prediction(hits[0], grid, ref_image, threshold)
    return hits


def _with_reference_prediction(subject, reference, todo: list, gaps: list[str],
                               found: Found) -> list:
    """``todo`` when scoring against the prediction at the reference condition can be done
    (that prediction and another one are there); else none, each condition a gap."""
    has_ref = any(c.condition.label == reference.label for c in todo)
    if has_ref and len(todo) >= 2:
        return todo
    why = (f"no prediction for the reference condition {reference.label}" if not has_ref
           else f"only the reference condition {reference.label} has a prediction")
    done = {c.condition.label for c in todo}
    for c in todo:
        gaps.append(c.condition.label)
        found.gaps.append((subject, c.condition.label, c.condition.spec, why))
    found.rows[:] = [{**r, "status": "not_scored", "detail": why}
                     if r["input"] == subject.key and r["desc"] in done else r
                     for r in found.rows]
    return []


def check_all(settings, opts, root: Path, manifests, specs, labels, pattern, tool,
              subjects) -> Found:
    """Every check of every prediction, before anything is written."""
    found = Found([], [], [], [])
    for path, values in pattern.every_file():
        if values["condition"] not in specs:
            found.problems.append(
                f"{path}: a prediction for condition '{values['condition']}', which was not "
                f"exported to {root} (exported: {', '.join(specs)}); remove it or export that "
                "condition")
    from bids_stroke.metrics.reference import resolve

    study = settings.study
    for subject in subjects:
        manifest = manifests.get(subject.key)
        reference = resolve(study.reference, subject.mask is not None,
                            study.reference_condition)
        reason = ("was not exported" if manifest is None else
                  "has no reference lesion mask (--reference prediction or auto scores it "
                  "against the tool's own native prediction)" if reference is None else "")
        if reason:
            for label in labels:
                found.gaps.append((subject, label, specs[label], reason))
                found.rows.append(_row(subject, label, specs[label], "not_scored",
                                       detail=reason))
            continue
        _check_subject(subject, manifest, labels, specs, pattern, tool, root, found,
                       reference)
    return found


def _check_mixing(out: Path, items, tool, clean: bool, settings) -> list[str]:
    """Refuse, before any write, subjects of OUT holding results of another model or tool
    (even for the conditions scored now), or made with other result-changing settings."""
    from bids_stroke.outputs.commit import (
        CommitError,
        ConditionRecord,
        plan_conditions,
        read_manifest,
    )

    problems = []
    for item in items:
        try:
            previous = read_manifest(out, item.subject.key)
            key = settings.results_key(item.reference.kind)
            records = [ConditionRecord(c.condition.label, c.condition.spec, tool.digest,
                                       key, "") for c in item.conditions]
            plan_conditions(previous, records, clean=clean)
        except CommitError as exc:
            problems.append(str(exc))
            continue
        if previous is None or clean:
            continue
        other = sorted(lab for lab, r in previous.conditions.items()
                       if r.model_sha256 != tool.digest)
        if other:
            problems.append(f"{out}: {item.subject.key} holds results of another model or tool "
                            f"(condition(s) {', '.join(other)}); score {tool.name} into another "
                            "output folder, or pass --clean to replace them")
    return problems


def _write_log(out: Path, run: str, rows: list[dict]) -> Path:
    from bids_stroke.core.atomic import atomic_write_text
    from bids_stroke.outputs.tsv import tsv_text

    columns = ["participant_id", "session_id", "input", "desc", "condition", "status",
               "prediction", "sha256", "detail"]
    return atomic_write_text(out / "logs" / f"score-{run}.tsv", tsv_text(rows, columns))


def _score_all(settings, found: Found, tool) -> ImageLoop:
    """Lock, score and commit each subject (:class:`ImageLoop`)."""
    from bids_stroke.core.versions import environment_info
    from bids_stroke.external.score import ScoreError, score_subject
    from bids_stroke.metrics import MetricsInputError
    from bids_stroke.outputs.commit import CommitError

    out = settings.data.output_dir
    run = settings.execution.run_uuid
    by_key = {item.subject.key: item for item in found.items}
    provenance = {"run": run, "versions": environment_info()}

    def score_one(key: str, work: Path) -> None:
        score_subject(out, by_key[key], tool, work, bids_dir=settings.data.bids_dir,
                      connectivity=settings.metrics.connectivity,
                      tolerance_mm=settings.metrics.tolerance_mm,
                      grid=settings.metrics.grid,
                      command=settings.execution.command,
                      save_degraded=settings.outputs.save_degraded,
                      results_key=settings.results_key(by_key[key].reference.kind),
                      run_uuid=run, clean=settings.execution.clean, provenance=provenance,
                      reference=by_key[key].reference)
        LOGGER.info("%s: scored %d condition(s) of %s", key, len(by_key[key].conditions),
                    tool.name)

    with ImageLoop(out, list(by_key), run=run, wait=settings.execution.lock_wait_s,
                   busy="another run is writing it") as images:
        # ScoreError, MetricsInputError: a file changed since it was checked
        images.work_each(score_one, errors=(ScoreError, MetricsInputError, CommitError),
                         prefix="bids_stroke-score-")
    return images


def run_score(settings, opts: argparse.Namespace) -> int:
    from bids_stroke.external.score import PredictionPattern, ScoreError, Tool, check_tool_name

    out = settings.data.output_dir
    root = export_folder(opts.exported, out)
    try:
        pattern = PredictionPattern(str(Path(opts.predictions).absolute())
                                    if not opts.predictions.startswith("/")
                                    else opts.predictions)
        # only a threshold given here: a study file's is the bundled model's, not the tool's
        threshold = settings.segmentation.threshold if opts.threshold is not None else None
        tool = Tool(check_tool_name(opts.tool_name), check_tool_name(opts.tool_version,
                                                                     "--tool-version")
                    if opts.tool_version else "", pattern.text, threshold)
    except ScoreError as exc:
        raise CLIError(str(exc), P.EXIT_USAGE) from exc
    settings = settings.replace(segmentation={"threshold": threshold})
    manifests, specs = _exported(root)
    labels = _labels(settings, opts, specs)
    from bids_stroke.metrics.reference import ReferenceError, check_reference_condition

    try:
        check_reference_condition(settings.study.reference, settings.study.reference_condition,
                                  [specs[lab] for lab in labels])
    except ReferenceError as exc:
        raise CLIError(f"{exc} (scored conditions: those exported, or --conditions)",
                       P.EXIT_USAGE) from None
    reference = _reference(settings, manifests)
    subjects = discover(settings, reference)
    found = check_all(settings, opts, root, manifests, specs, labels, pattern, tool, subjects)
    if found.problems:
        for line in found.problems:
            print(f"bids_stroke: error: {line}", file=sys.stderr)
        raise CLIError(f"{len(found.problems)} problem(s) above: nothing was scored or "
                       "written; fix them and re-run", P.EXIT_BAD_DATA)
    scored = [specs[lab] for lab in labels
              if any(c.condition.label == lab for i in found.items for c in i.conditions)]
    settings = settings.replace(study={"conditions": scored or list(specs.values())})
    mixing = _check_mixing(out, found.items, tool, bool(settings.execution.clean), settings)
    if mixing:
        for line in mixing:
            print(f"bids_stroke: error: {line}", file=sys.stderr)
        raise CLIError("nothing was scored or written (see above)", P.EXIT_USAGE)
    for subject, label, _spec, reason in found.gaps:
        print(f"bids_stroke: error: {subject.key}: condition {label} is not scored: {reason}",
              file=sys.stderr)
    if not found.items:
        raise CLIError(f"no prediction to score ({len(found.gaps)} gap(s) above; pattern "
                       f"{pattern.text})", P.EXIT_NO_INPUT)
    write_dataset_level(settings, reference)
    settings.write(out / "logs")
    images = _score_all(settings, found, tool)
    log = _write_log(out, settings.execution.run_uuid, found.rows)
    LOGGER.info("Scored %s: %d input(s) committed, %d gap(s), %d failed; log %s", tool.name,
                len(images.done), len(found.gaps), len(found.items) - len(images.done), log)
    return images.exit_code(gaps=P.EXIT_NO_INPUT if found.gaps else P.EXIT_OK)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[2:] if argv is None else argv)
    opts = build_parser().parse_args(argv)
    setup_logging(opts.verbose)
    return run_guarded(lambda: run_score(settings_for(opts, argv, "score"), opts))
