"""How to cite bids_stroke and the datasets of the study it reproduces.

The same facts as ``CITATION.cff`` at the top of the repository (a test keeps them in step),
here because an installed package has no copy of that file. Both reports end with them.
"""

from __future__ import annotations

from bids_stroke.__about__ import __version__

__all__ = ["DATASETS", "SOFTWARE", "citation_lines"]

TITLE = ("bids_stroke: how much does MRI spatial resolution change what a stroke lesion "
         "segmentation model sees?")
SOFTWARE = f"bids_stroke developers. {TITLE} Version {__version__}. Software (Apache-2.0)"
#: (short name, reference) of the datasets of the original study, with verified DOIs
DATASETS: tuple[tuple[str, str], ...] = (
    ("ATLAS v2.0", "Liew S-L, Lo BP, Donnelly MR, Zavaliangos-Petropulu A, Jeong JN, "
                   "Barisano G, et al. A large, curated, open-source stroke neuroimaging "
                   "dataset to improve lesion segmentation algorithms. Scientific Data 9, 320 "
                   "(2022). doi:10.1038/s41597-022-01401-7"),
    ("ISLES 2022", "Hernandez Petzsche MR, de la Rosa E, Hanning U, Wiest R, Valenzuela W, "
                   "Reyes M, et al. ISLES 2022: A multi-center magnetic resonance imaging "
                   "stroke lesion segmentation dataset. Scientific Data 9, 762 (2022). "
                   "doi:10.1038/s41597-022-01875-5"),
)


def citation_lines() -> list[str]:
    """The sentences a report ends with: bids_stroke, then the datasets to cite with it."""
    return [f"Cite bids_stroke as: {SOFTWARE}; the same record is CITATION.cff in its "
            "repository.",
            *(f"If you analyse {name}, cite it: {ref}." for name, ref in DATASETS)]
