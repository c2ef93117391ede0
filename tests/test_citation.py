"""CITATION.cff is valid Citation File Format 1.2.0 and says what the reports say."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from bids_stroke import __version__
from bids_stroke.reports.citation import DATASETS, SOFTWARE, TITLE, citation_lines

CFF = Path(__file__).resolve().parents[1] / "CITATION.cff"
#: the DOI pattern of the CFF 1.2.0 schema
DOI = re.compile(r"^10\.\d{4,9}(\.\d+)?/[A-Za-z0-9:/_;\-\.\(\)\[\]\\]+$")
#: person keys and entity keys of the CFF 1.2.0 schema (an author is one or the other)
PERSON = {"family-names", "given-names", "name-particle", "name-suffix", "affiliation",
          "orcid", "email", "website", "alias", "address", "city", "country", "fax",
          "post-code", "region", "tel"}
ENTITY = {"name", "address", "city", "country", "email", "fax", "orcid", "post-code",
          "region", "tel", "website", "alias", "date-start", "date-end", "location"}
TOP = {"abstract", "authors", "cff-version", "commit", "contact", "date-released", "doi",
       "identifiers", "keywords", "license", "license-url", "message", "preferred-citation",
       "references", "repository", "repository-artifact", "repository-code", "title", "type",
       "url", "version"}


def _check_authors(authors) -> None:
    assert isinstance(authors, list) and authors
    for a in authors:
        assert isinstance(a, dict) and a
        keys = set(a)
        assert keys <= PERSON or keys <= ENTITY, keys
        assert ("name" in keys) != bool(keys & {"family-names", "given-names"}), keys
        assert all(isinstance(v, str) and v.strip() for v in a.values())


def test_citation_cff_is_valid_cff_1_2_0() -> None:
    data = yaml.safe_load(CFF.read_text())
    assert set(data) <= TOP
    assert data["cff-version"] == "1.2.0"
    assert data["type"] in ("software", "dataset")
    for key in ("message", "title"):
        assert isinstance(data[key], str) and data[key].strip()
    _check_authors(data["authors"])
    assert str(data["version"]) == __version__
    for ref in data["references"]:
        assert ref["type"] == "article" and ref["title"].strip()
        _check_authors(ref["authors"])
        assert DOI.match(ref["doi"]), ref["doi"]
        assert isinstance(ref["year"], int)


def test_reports_and_readme_cite_what_citation_cff_says() -> None:
    data = yaml.safe_load(CFF.read_text())
    assert TITLE == data["title"] and __version__ in SOFTWARE
    text = " ".join(citation_lines())
    for ref in data["references"]:
        assert f"doi:{ref['doi']}" in text and ref["title"] in text
    assert len(DATASETS) == len(data["references"])
    readme = (CFF.parent / "README.md").read_text()
    assert "CITATION.cff" in readme
    assert all(ref["doi"] in readme for ref in data["references"])
