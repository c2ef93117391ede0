"""The README and ``docs/`` stay navigable and in step with the code: every relative link and
anchor resolves, the Contents list is the README's headings, the set-up commands come first,
the usage block names every command, every ``--help`` is on ``docs/usage.md`` exactly as the
snapshots of ``tests/test_help.py`` hold it, and every docs page is reachable from the README.

The output tree of ``docs/outputs.md`` is compared with a real ``make demo`` run in
``tests/test_make_demo.py`` and with the group level's files in ``tests/test_group.py``.

After a deliberate change of a ``--help`` text, regenerate its snapshot and this page's block:
``BIDS_STROKE_UPDATE_SNAPSHOTS=1 pytest tests/test_help.py tests/test_docs.py``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from bids_stroke.cli.run import SUBCOMMANDS
from tests.docs_check import (
    DOCS,
    README,
    REPO,
    anchors,
    fenced_blocks,
    headings,
    help_blocks,
    help_snapshots,
    links,
    output_tree,
    section,
    slug,
)

PAGES = [README, *sorted(DOCS.glob("*.md"))]
USAGE = DOCS / "usage.md"
#: README sections other documents and the issues' checks refer to by name
REQUIRED_SECTIONS = ("Installing", "Group level", "Score any tool", "Your model",
                     "Reliability: what you can count on", "Disk and memory", "Exit codes",
                     "Citing", "Contents")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_relative_link_resolves(page: Path) -> None:
    """Each link to a file of the repository names an existing file or folder, and each
    ``#anchor`` (to the same page or another Markdown page) a heading there."""
    text = page.read_text()
    broken = []
    for line, _, target in links(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"line {line}: {target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest.read_text()):
            broken.append(f"line {line}: {target} (no heading #{anchor} in {dest.name})")
        elif REPO not in dest.parents and dest != REPO:
            broken.append(f"line {line}: {target} (outside the repository)")
    assert not broken, "\n".join(broken)


def test_link_checker_sees_a_broken_link(tmp_path: Path) -> None:
    """The checker above is not vacuous: it finds links, ignores code, and resolves anchors."""
    text = ("# Title\n\nSee [a](#title), [b](missing.md), `[c](code.md)` and\n"
            "```\n[d](fenced.md)\n```\n## Sub `x` — part\n")
    assert [target for _, _, target in links(text)] == ["#title", "missing.md"]
    assert anchors(text) == {"title", "sub-x--part"}
    assert anchors("## A\n## A\n") == {"a", "a-1"}


def test_set_up_commands_come_first() -> None:
    """``make demo`` and ``make test`` are the first commands a reader meets."""
    head = "\n".join(README.read_text().splitlines()[:40])
    first_block = fenced_blocks(head)[0][1]
    assert re.search(r"^make demo\b", first_block, re.MULTILINE)
    assert re.search(r"^make test\b", first_block, re.MULTILINE)


def test_contents_lists_every_section_in_order() -> None:
    text = README.read_text()
    sections = [title for level, title in headings(text) if level == 2]
    listed = [target for _, _, target in links(section(text, "Contents"))]
    assert all(target.startswith("#") for target in listed), listed
    expected = [f"#{slug(title)}" for title in sections if title != "Contents"]
    assert listed == expected


def test_required_sections_are_in_the_readme() -> None:
    sections = {title for level, title in headings(README.read_text()) if level == 2}
    assert set(REQUIRED_SECTIONS) <= sections, set(REQUIRED_SECTIONS) - sections


def test_every_docs_page_is_linked_from_the_readme() -> None:
    linked = {(README.parent / target.partition("#")[0]).resolve()
              for _, _, target in links(README.read_text()) if not target.startswith("#")}
    orphans = [p.name for p in DOCS.glob("*.md") if p.resolve() not in linked]
    assert not orphans, f"docs pages no README link reaches: {orphans}"


def test_usage_block_names_every_command() -> None:
    """The README's usage block (the second code block) shows every command and level."""
    usage = fenced_blocks(README.read_text())[1][1]
    for command in [*help_snapshots(), "bids_stroke BIDS_DIR OUTPUT_DIR participant",
                    "bids_stroke BIDS_DIR OUTPUT_DIR group"]:
        assert re.search(rf"^{re.escape(command)}\b", usage, re.MULTILINE), command


def test_every_subcommand_has_a_help_snapshot() -> None:
    """A new subcommand cannot go undocumented: each has a snapshot, hence a usage.md block."""
    documented = {words.split()[1] for words in help_snapshots() if " " in words}
    assert set(SUBCOMMANDS) <= documented, set(SUBCOMMANDS) - documented


def test_usage_page_holds_every_help_text() -> None:
    """``docs/usage.md`` has one section per command whose code block is that command's
    ``--help`` exactly (the snapshots are compared with the code in ``tests/test_help.py``)."""
    snapshots = help_snapshots()
    text = USAGE.read_text()
    if os.environ.get("BIDS_STROKE_UPDATE_SNAPSHOTS") == "1":
        USAGE.write_text(_with_blocks(text, snapshots))
        text = USAGE.read_text()
    blocks = help_blocks(text)
    assert list(blocks) == list(snapshots), "docs/usage.md: one section per command, in order"
    for command, body in snapshots.items():
        assert blocks[command] == body, f"docs/usage.md: `{command} --help` differs (see the " \
                                        "module docstring to regenerate)"


def _with_blocks(text: str, snapshots: dict[str, str]) -> str:
    """``text`` with the code block under each ``## `command` `` heading replaced by the
    snapshot (used only to regenerate the page)."""
    for command, body in snapshots.items():
        pattern = re.compile(rf"(^## `{re.escape(command)}`\n(?:(?!^## ).*\n)*?```text\n)"
                             r"(?:.*\n)*?(```\n)", re.MULTILINE)
        text, count = pattern.subn(lambda m, b=body: m.group(1) + b + m.group(2), text, count=1)
        assert count == 1, f"docs/usage.md has no ## `{command}` section with a text block"
    return text


def test_output_tree_is_parsed() -> None:
    """The documented tree yields the demo's per-image files, with sidecars, and marks the
    optional ones (the comparison with real runs is in test_make_demo.py and test_group.py)."""
    entries = {e.pattern: e for e in output_tree((DOCS / "outputs.md").read_text())}
    prefix = "sub-r001s001/ses-1/anat/sub-r001s001_ses-1_space-MNI152NLin2009aSym"
    for label in ("native", "crude2", "linear2"):
        for kind in ("probseg.nii.gz", "probseg.json", "mask.nii.gz", "mask.json"):
            assert not entries[f"{prefix}_label-L_desc-{label}_{kind}"].optional
    assert f"{prefix}_desc-native_T1w.nii.gz" not in entries  # native is the preproc image
    assert entries["group_desc-datasets_stats.tsv"].optional
    assert entries[".bids_stroke/locks/"].folder
