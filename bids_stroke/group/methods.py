"""The methods boilerplate: paragraphs a paper can use, generated from what this run did.

Like fMRIPrep's and MRIQC's boilerplate, the text is built from the run's own settings - the
conditions and their parameters, the participant level's recorded settings (registration,
model, threshold, metric conventions), the group level's unit, primary metric, margins, tests,
corrections and intervals - never from a fixed text, and cites what was used. The group level
writes it as ``group_methods.md`` and ``group_methods.html`` and shows it in the report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bids_stroke.core.settings import TEMPLATE, GroupSettings, MetricsSettings
from bids_stroke.group.describe import size_bin_labels
from bids_stroke.group.labels import metric_direction, metric_short

__all__ = ["REFERENCES", "MethodsDocument", "MethodsInput", "methods_document", "section_html",
           "to_html", "to_markdown"]

#: every work the text may cite (key -> reference); only those cited are listed
REFERENCES: dict[str, str] = {
    "bids": "Gorgolewski KJ, Auer T, Calhoun VD, et al. The brain imaging data structure, a "
            "format for organizing and describing outputs of neuroimaging experiments. Sci "
            "Data. 2016;3:160044.",
    "bidsapps": "Gorgolewski KJ, Alfaro-Almagro F, Auer T, et al. BIDS apps: improving ease "
                "of use, accessibility, and reproducibility of neuroimaging data analysis "
                "methods. PLoS Comput Biol. 2017;13(3):e1005209.",
    "nipype": "Gorgolewski K, Burns CD, Madison C, et al. Nipype: a flexible, lightweight and "
              "extensible neuroimaging data processing framework in Python. Front "
              "Neuroinform. 2011;5:13.",
    "ants": "Avants BB, Tustison NJ, Song G, Cook PA, Klein A, Gee JC. A reproducible "
            "evaluation of ANTs similarity metric performance in brain image registration. "
            "NeuroImage. 2011;54(3):2033-2044.",
    "antsx": "Tustison NJ, Cook PA, Holbrook AJ, et al. The ANTsX ecosystem for quantitative "
             "biological and medical imaging. Sci Rep. 2021;11:9068.",
    "templateflow": "Ciric R, Thompson WH, Lorenz R, et al. TemplateFlow: FAIR-sharing of "
                    "multi-scale, multi-species brain models. Nat Methods. "
                    "2022;19:1568-1571.",
    "mni2009": "Fonov VS, Evans AC, McKinstry RC, Almli CR, Collins DL. Unbiased nonlinear "
               "average age-appropriate brain templates from birth to adulthood. NeuroImage. "
               "2009;47:S102.",
    "pytorch": "Paszke A, Gross S, Massa F, et al. PyTorch: an imperative style, "
               "high-performance deep learning library. Adv Neural Inf Process Syst. "
               "2019;32:8024-8035.",
    "unet3d": "Cicek O, Abdulkadir A, Lienkamp SS, Brox T, Ronneberger O. 3D U-Net: learning "
              "dense volumetric segmentation from sparse annotation. MICCAI 2016, LNCS "
              "9901:424-432.",
    "nnunet": "Isensee F, Jaeger PF, Kohl SAA, Petersen J, Maier-Hein KH. nnU-Net: a "
              "self-configuring method for deep learning-based biomedical image segmentation. "
              "Nat Methods. 2021;18:203-211.",
    "onnx": "ONNX Runtime developers. ONNX Runtime (software). https://onnxruntime.ai",
    "dice": "Dice LR. Measures of the amount of ecologic association between species. "
            "Ecology. 1945;26(3):297-302.",
    "surfacedice": "Nikolov S, Blackwell S, Zverovitch A, et al. Clinically applicable "
                   "segmentation of head and neck anatomy for radiotherapy: deep learning "
                   "algorithm development and validation study. J Med Internet Res. "
                   "2021;23(7):e26151.",
    "isles22": "Hernandez Petzsche MR, de la Rosa E, Hanning U, et al. ISLES 2022: a "
               "multi-center magnetic resonance imaging stroke lesion segmentation dataset. "
               "Sci Data. 2022;9:762.",
    "wilcoxon": "Wilcoxon F. Individual comparisons by ranking methods. Biometrics Bulletin. "
                "1945;1(6):80-83.",
    "hodgeslehmann": "Hodges JL, Lehmann EL. Estimates of location based on rank tests. Ann "
                     "Math Stat. 1963;34(2):598-611.",
    "bauer": "Bauer DF. Constructing confidence sets using rank statistics. J Am Stat Assoc. "
             "1972;67(339):687-690.",
    "schuirmann": "Schuirmann DJ. A comparison of the two one-sided tests procedure and the "
                  "power approach for assessing the equivalence of average bioavailability. "
                  "J Pharmacokinet Biopharm. 1987;15(6):657-680.",
    "noether": "Noether GE. Sample size determination for some common nonparametric tests. "
               "J Am Stat Assoc. 1987;82(398):645-647.",
    "holm": "Holm S. A simple sequentially rejective multiple test procedure. Scand J Stat. "
            "1979;6(2):65-70.",
    "bh": "Benjamini Y, Hochberg Y. Controlling the false discovery rate: a practical and "
          "powerful approach to multiple testing. J R Stat Soc B. 1995;57(1):289-300.",
    "friedman": "Friedman M. The use of ranks to avoid the assumption of normality implicit in "
                "the analysis of variance. J Am Stat Assoc. 1937;32(200):675-701.",
    "kendall": "Kendall MG, Babington Smith B. The problem of m rankings. Ann Math Stat. "
               "1939;10(3):275-287.",
    "kerby": "Kerby DS. The simple difference formula: an approach to teaching nonparametric "
             "correlation. Comprehensive Psychology. 2014;3:11.IT.3.1.",
    "efron": "Efron B, Tibshirani RJ. An Introduction to the Bootstrap. New York: Chapman & "
             "Hall; 1993.",
    "fieldwelsh": "Field CA, Welsh AH. Bootstrapping clustered data. J R Stat Soc B. "
                  "2007;69(3):369-390.",
    "mannwhitney": "Mann HB, Whitney DR. On a test of whether one of two random variables is "
                   "stochastically larger than the other. Ann Math Stat. 1947;18(1):50-60.",
    "brunnermunzel": "Brunner E, Munzel U. The nonparametric Behrens-Fisher problem: "
                     "asymptotic theory and a small-sample approximation. Biom J. "
                     "2000;42(1):17-25.",
    "neubert": "Neubert K, Brunner E. A studentized permutation test for the non-parametric "
               "Behrens-Fisher problem. Comput Stat Data Anal. 2007;51(10):5192-5204.",
    "cliff": "Cliff N. Dominance statistics: ordinal analyses to answer ordinal questions. "
             "Psychol Bull. 1993;114(3):494-509.",
    "sen": "Sen PK. Estimates of the regression coefficient based on Kendall's tau. J Am Stat "
           "Assoc. 1968;63(324):1379-1389.",
    "blandaltman": "Bland JM, Altman DG. Measuring agreement in method comparison studies. "
                   "Stat Methods Med Res. 1999;8(2):135-160.",
    "r": "R Core Team. R: a language and environment for statistical computing. Vienna, "
         "Austria: R Foundation for Statistical Computing.",
    "numpy": "Harris CR, Millman KJ, van der Walt SJ, et al. Array programming with NumPy. "
             "Nature. 2020;585:357-362.",
    "scipy": "Virtanen P, Gommers R, Oliphant TE, et al. SciPy 1.0: fundamental algorithms for "
             "scientific computing in Python. Nat Methods. 2020;17:261-272.",
    "pandas": "McKinney W. Data structures for statistical computing in Python. Proceedings of "
              "the 9th Python in Science Conference. 2010:56-61.",
    "matplotlib": "Hunter JD. Matplotlib: a 2D graphics environment. Comput Sci Eng. "
                  "2007;9(3):90-95.",
}


@dataclass
class MethodsInput:
    """What the text describes (everything from the run; see :func:`methods_document`)."""

    n_participants: int
    n_sessions: int
    n_images: int
    conditions: Sequence[str]
    specs: Mapping[str, str]
    descriptions: Mapping[str, str]
    metrics: Sequence[str]
    primary: str
    margins: Mapping[str, float]
    alpha: float
    n_boot: int
    seed: int
    unit: str
    zero_method: str
    digits_rank: int | None
    size_bins_ml: Sequence[float]
    versions: Mapping[str, str]
    #: versions of the participant level's libraries installed where the group level ran
    pipeline_versions: Mapping[str, str] = field(default_factory=dict)
    bland_altman: str = GroupSettings.bland_altman
    #: the participant level's recorded settings (``logs/config-<run>.json``), newest last
    participant: Sequence[Mapping[str, Any]] = ()
    #: what made the predictions: one line each, and each model's kind (when known)
    models: Sequence[str] = ()
    model_kinds: Sequence[str] = ()
    #: the thresholds the masks record (their sidecars' Threshold)
    thresholds: Sequence[float] = ()
    #: True when every model works on the acquisition grid (no template registration)
    native_space: bool = False
    paired: bool = True
    wilcoxon_methods: Mapping[str, int] = field(default_factory=dict)
    n_primary_comparisons: int = 0
    datasets: Sequence[str] = ()
    dataset_pairs: Sequence[str] = ()
    bm_methods: Mapping[str, int] = field(default_factory=dict)
    lesion_detection: bool = False
    #: what every prediction was scored against (None: the lesion mask)
    reference: Any = None
    date: str = ""


@dataclass
class MethodsDocument:
    """Paragraphs (with ``[n]`` citations) and the numbered references they cite."""

    title: str
    paragraphs: list[str]
    references: list[str]


class _Cite:
    """Numbers references in order of first citation."""

    def __init__(self) -> None:
        self.order: list[str] = []

    def __call__(self, *keys: str) -> str:
        nums = []
        for key in keys:
            if key not in self.order:
                self.order.append(key)
            nums.append(str(self.order.index(key) + 1))
        return "[" + ", ".join(nums) + "]"


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _level(level: float) -> str:
    return f"{float(f'{100 * level:.4g}'):g}%"


def _list(items: Sequence[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _data_paragraph(m: MethodsInput, cite: _Cite) -> str:
    conds = "; ".join(
        f"{c} ({m.specs.get(c, c)}{': ' + m.descriptions[c] if m.descriptions.get(c) else ''})"
        for c in m.conditions)
    version = m.versions.get("bids_stroke", "n/a")
    text = (f"Segmentations were analysed with bids_stroke {version}, a BIDS-App "
            f"{cite('bids', 'bidsapps')} whose participant-level workflow runs in Nipype "
            f"{cite('nipype')}. The analysis included {_plural(m.n_participants, 'participant')}"
            f" ({_plural(m.n_sessions, 'participant-session')}, "
            f"{_plural(m.n_images, 'image')}). Each image was presented to the segmentation "
            f"model under {_plural(len(m.conditions), 'resolution condition')}: {conds}.")
    cfg = m.participant[-1] if m.participant else None
    kinds = set(m.model_kinds)
    if cfg:
        reg = cfg.get("registration", {})
        seg = cfg.get("segmentation", {})
        met = cfg.get("metrics", {})
        if not m.native_space:
            text += (f" Images not already in {reg.get('template', TEMPLATE)} space "
                     f"{cite('mni2009')} (template from TemplateFlow {cite('templateflow')}, "
                     f"{reg.get('template_resolution', 1)} mm) were registered to it with "
                     f"{_article(str(reg.get('kind', 'affine')))} {reg.get('kind', 'affine')} "
                     f"transform in ANTs (antspyx) "
                     f"{cite('ants', 'antsx')}; images already in that space were only brought "
                     f"to RAS+ voxel order. Degradation and segmentation took place on the "
                     f"template grid and predictions of registered images were mapped back to "
                     f"the native grid (nearest neighbour).")
        else:
            text += (" The model works on the acquisition grid: the images were degraded, "
                     "segmented and scored on their own grid.")
        threshold = seg.get("threshold")
        own = " and ".join(f"{t:g}" for t in m.thresholds)
        text += (f" Lesions were segmented by {_list(m.models) or 'the model'}"
                 + (f" ({_model_cites(kinds, cite)})" if kinds else "")
                 + (f", with a probability threshold of {threshold:g}" if isinstance(
                     threshold, int | float) else
                     f", with the model's own probability threshold ({own})" if own else
                     ", with the model's own threshold")
                 + (", with mirror test-time augmentation" if seg.get("tta") else "")
                 + f" and inference mode {seg.get('mode', 'auto')}.")
        grid = met.get("grid", "native")  # configs written before grid was a setting
        text += (f" {_scored_against(m)}: "
                 f"{_metric_words(m.metrics, cite)}; lesions were "
                 f"{met.get('connectivity', MetricsSettings.connectivity)}-connected "
                 "components, the surface Dice tolerance "
                 f"{met.get('tolerance_mm', MetricsSettings.tolerance_mm):g} mm, and true "
                 "negatives were "
                 f"counted over the {'native grid' if grid == 'native' else grid + ' grid'}.")
        libs = {"nipype": "Nipype", "pybids": "PyBIDS", "antspyx": "antspyx",
                "torch": "PyTorch", "nnunetv2": "nnU-Net", "onnxruntime": "ONNX Runtime",
                "nibabel": "NiBabel"}
        wanted = [k for k in libs if k in m.pipeline_versions
                  and (k != "nnunetv2" or "nnunet" in kinds)
                  and (k != "onnxruntime" or "onnx" in kinds)
                  and (k != "antspyx" or not m.native_space)]
        if wanted:
            text += (" Installed versions: " + ", ".join(
                f"{libs[k]} {m.pipeline_versions[k]}" for k in wanted) + ".")
        if len(m.participant) > 1:
            text += (f" (Settings of the most recent of {len(m.participant)} participant-level "
                     f"runs; the others are in logs/.)")
    else:
        text += (f" Lesions were segmented by {_list(m.models) or 'the model'}. "
                 f"{_scored_against(m)}: "
                 f"{_metric_words(m.metrics, cite)}. (The participant level's settings were not "
                 f"found in logs/; see its outputs' sidecars.)")
    return text


def _scored_against(m: MethodsInput) -> str:
    """What the metrics compare each prediction with, as the start of a sentence."""
    ref = m.reference
    if ref is None or not getattr(ref, "is_prediction", False):
        return "Every prediction was scored against the untouched native lesion mask"
    return (f"No manual lesion masks were used: every condition's prediction was scored "
            f"against the model's own prediction at {ref.condition} with the same metric code "
            f"on the same grid, so every value is {ref.words}, not accuracy (the reference "
            f"condition's agreement with itself is perfect by definition and was used as the "
            f"comparison value of the paired tests)")


def _model_cites(kinds: set[str], cite: _Cite) -> str:
    parts = []
    if kinds & {"bids_stroke-unet", "bids_stroke", "torchscript"}:
        parts.append(f"3D U-Net {cite('unet3d')} in PyTorch {cite('pytorch')}")
    if "nnunet" in kinds:
        parts.append(f"nnU-Net {cite('nnunet')} in PyTorch {cite('pytorch')}")
    if "onnx" in kinds:
        parts.append(f"ONNX Runtime {cite('onnx')}")
    return "; ".join(parts) or ", ".join(sorted(kinds))


def _metric_words(metrics: Sequence[str], cite: _Cite) -> str:
    words = []
    for metric in metrics:
        word = metric_short(metric)
        if metric == "dice":
            word += f" {cite('dice')}"
        elif metric == "surface_dice":
            word += f" {cite('surfacedice')}"
        elif metric == "lesion_f1":
            word += f" (as ISLES'22 {cite('isles22')})"
        words.append(word)
    return "the metrics " + _list(words)


def _unit_text(unit: str) -> str:
    return ("one value per participant: a participant's images (sessions, runs) were averaged "
            "per condition before testing" if unit == "participant" else
            "one value per image (images of one participant treated as independent)")


def _primary_paragraph(m: MethodsInput, cite: _Cite) -> str:
    k = max(m.n_primary_comparisons, 1)
    level = 1 - 2 * m.alpha / k
    direction = {1: "higher is better", -1: "lower is better", 0: "no direction"}
    margins = "; ".join(f"{metric_short(x)} {PLUS_MINUS}{v:g} ({direction[metric_direction(x)]})"
                        for x, v in m.margins.items())
    ref = m.conditions[0] if m.conditions else "the reference"
    return (
        f"The statistical unit was {_unit_text(m.unit)}. The primary endpoint was "
        f"{metric_short(m.primary)}: for each condition against {ref}, the paired change "
        f"(condition - {ref}) was estimated by the Hodges-Lehmann estimator with the "
        f"confidence interval that inverts the Wilcoxon signed-rank test "
        f"{cite('wilcoxon', 'hodgeslehmann', 'bauer')}, at level 1 - 2 alpha / m = "
        f"{_level(level)} (alpha = {m.alpha:g}; two one-sided tests {cite('schuirmann')}, "
        f"Bonferroni-adjusted over the m = {k} primary comparisons so that the verdicts hold "
        f"simultaneously; with very few pairs the exact interval has the level it can reach, "
        f"stated in the verdict table). Equivalence margins (in each metric's units): "
        f"{margins}. A condition "
        f"was called equivalent when the interval lay inside the margins, non-inferior when it "
        f"excluded a loss as large as the margin, inferior when it lay entirely beyond that "
        f"loss, and inconclusive otherwise; margins other than the primary's gave exploratory, "
        f"unadjusted ({_level(1 - 2 * m.alpha)}) verdicts. For verdicts short of equivalence "
        f"the number of units needed was estimated as (pi/3)(z_(1-a) + z_(1-b))^2 s^2 / "
        f"(margin - |estimate|)^2 with 80% power, s the SD of the paired changes and pi/3 the "
        f"signed-rank test's efficiency relative to the t test {cite('noether')}.")


def _tests_paragraph(m: MethodsInput, cite: _Cite) -> str:
    k = len(m.conditions)
    digits = ("exactly (binary values)" if m.digits_rank is None else
              f"after rounding to {m.digits_rank} significant digits, so that values equal in "
              f"decimal tie")
    zero = ("zero differences were discarded before ranking" if m.zero_method == "wilcox" else
            "zero differences were ranked and left out of the rank sums (Pratt)")
    used = ", ".join(f"{name} ({_plural(n, 'test')})" for name, n in m.wilcoxon_methods.items())
    return (
        f"For every metric, every pair of the {k} conditions was compared with a two-sided "
        f"Wilcoxon signed-rank test on the units with a value under both (pairwise deletion); "
        f"{zero}, and differences were compared {digits}. p-values were exact with fewer than "
        f"50 non-zero differences and neither ties nor zeros, and otherwise from the normal "
        f"approximation with tie and continuity corrections, the rules of R's wilcox.test "
        f"{cite('r')}" + (f" (this run: {used})" if used else "") + ". Each comparison reports "
        f"the Hodges-Lehmann change with its signed-rank interval, unadjusted "
        f"({_level(1 - m.alpha)}) and Bonferroni-adjusted over its family, and the "
        f"matched-pairs rank-biserial correlation {cite('kerby')} with a percentile-bootstrap "
        f"interval {cite('efron')} ({m.n_boot} resamples of the units, seed {m.seed}). "
        f"p-values were adjusted within each metric across its {k * (k - 1) // 2} condition "
        f"pairs by Holm's procedure {cite('holm')} (significance at alpha = {m.alpha:g}) and "
        f"by Benjamini-Hochberg {cite('bh')}; the primary metric's family is confirmatory, "
        f"every other metric's exploratory. A Friedman test {cite('friedman')} with Kendall's "
        f"W {cite('kendall')} was run per metric on complete cases.")


def _datasets_paragraph(m: MethodsInput, cite: _Cite) -> str:
    used = ", ".join(f"{name} ({_plural(n, 'test')})" for name, n in m.bm_methods.items())
    pairs = f" ({'; '.join(m.dataset_pairs)})" if m.dataset_pairs else ""
    return (
        f"Datasets ({_list(list(m.datasets))}) were compared{pairs} with the Brunner-Munzel "
        f"test {cite('brunnermunzel')}, valid when the groups differ in spread, which decided "
        f"significance (Holm within each metric); with fewer than 10 values in a group its "
        f"studentised permutation version {cite('neubert')} was used"
        + (f" (this run: {used})" if used else "") + ". The effect size is Cliff's delta "
        f"{cite('cliff')} with the interval that inverts the Brunner-Munzel test (and a "
        f"percentile-bootstrap interval, each dataset resampled on its own); the "
        f"Mann-Whitney U test {cite('mannwhitney')} and the Hodges-Lehmann shift with its "
        f"Mann-Whitney interval are reported beside them.")


def _other_paragraph(m: MethodsInput, cite: _Cite) -> str:
    bins = ", ".join(size_bin_labels(m.size_bins_ml))
    text = (f"The dependence of the primary metric's change on lesion size was estimated by "
            f"Theil-Sen regression of the paired change on log10 reference lesion volume, with "
            f"the interval inverting Kendall's tau test of the slope {cite('sen')} "
            f"(exploratory); results were also stratified by the unit's total reference lesion "
            f"volume (bins {bins}).")
    if m.lesion_detection:
        text += (f" Per-lesion detection rates by individual lesion volume carry "
                 f"participant-level cluster-bootstrap intervals {cite('fieldwelsh')}: "
                 f"participants were resampled with all their lesions, since lesions of one "
                 f"participant are not independent.")
    if m.bland_altman == "log":
        text += (f" Agreement of predicted and reference lesion volumes is shown in "
                 f"Bland-Altman plots of the volume ratio on a log scale (bias and 95% limits "
                 f"of agreement of the log ratio, back-transformed) {cite('blandaltman')}.")
    else:
        text += (f" Agreement of predicted and reference lesion volumes is shown in "
                 f"Bland-Altman plots in ml {cite('blandaltman')}.")
    return text


def _software_paragraph(m: MethodsInput, cite: _Cite) -> str:
    libs = {"numpy": "NumPy", "scipy": "SciPy", "pandas": "pandas", "matplotlib": "Matplotlib"}
    keys = {"numpy": "numpy", "scipy": "scipy", "pandas": "pandas", "matplotlib": "matplotlib"}
    used = [f"{label} {m.versions[k]} {cite(keys[k])}" for k, label in libs.items()
            if k in m.versions]
    others = [f"{k} {v}" for k, v in m.versions.items()
              if k not in libs and k not in ("python", "bids_stroke")]
    text = (f"Statistics were computed with bids_stroke {m.versions.get('bids_stroke', 'n/a')} "
            f"in Python {m.versions.get('python', 'n/a')} with {_list(used)}")
    text += f" ({', '.join(others)})." if others else "."
    text += (" The Hodges-Lehmann intervals, exact quantiles and rounding reproduce R's "
             "wilcox.test to the last digits (the group level's test suite compares them with "
             "stored R results).")
    return text


PLUS_MINUS = "\u00b1"


def methods_document(m: MethodsInput) -> MethodsDocument:
    """The methods paragraphs and their references."""
    cite = _Cite()
    paragraphs = [_data_paragraph(m, cite)]
    if m.paired:
        paragraphs += [_primary_paragraph(m, cite), _tests_paragraph(m, cite)]
    else:
        paragraphs.append(f"The statistical unit was {_unit_text(m.unit)}.")
    if m.datasets:
        paragraphs.append(_datasets_paragraph(m, cite))
    if m.paired:
        paragraphs.append(_other_paragraph(m, cite))
    paragraphs.append(_software_paragraph(m, cite))
    title = "Methods" + (f" (generated by bids_stroke {m.versions.get('bids_stroke')}"
                         f"{' on ' + m.date if m.date else ''})")
    return MethodsDocument(title=title, paragraphs=paragraphs,
                           references=[REFERENCES[k] for k in cite.order])


def to_markdown(doc: MethodsDocument) -> str:
    """``group_methods.md``: the paragraphs and a numbered reference list."""
    lines = [f"# {doc.title}", "",
             "*Generated from this run's settings; edit freely. Numbers in brackets refer to "
             "the references below.*", ""]
    for p in doc.paragraphs:
        lines += [p, ""]
    lines += ["## References", ""]
    lines += [f"{i}. {r}" for i, r in enumerate(doc.references, start=1)]
    return "\n".join(lines) + "\n"


def to_html(doc: MethodsDocument) -> str:
    """``group_methods.html``: the same text as a standalone page."""
    from bids_stroke.reports import html as H

    body = "".join(H.paragraph(p) for p in doc.paragraphs)
    refs = "<ol class=\"references\">" + "".join(f"<li>{H.escape(r)}</li>"
                                                 for r in doc.references) + "</ol>"
    return H.page(doc.title, H.section("Methods", body, anchor="methods")
                  + H.section("References", refs, anchor="references"))


def section_html(doc: MethodsDocument) -> str:
    """The report's Methods section body: paragraphs and references."""
    from bids_stroke.reports import html as H

    body = "".join(H.paragraph(p) for p in doc.paragraphs)
    return body + "<h3>References</h3><ol class=\"references\">" + "".join(
        f"<li>{H.escape(r)}</li>" for r in doc.references) + "</ol>"
