"""Reading the Markdown documentation the way GitHub renders it, for the tests that keep it in
step with the code: headings and their anchors, relative links, fenced blocks, the documented
output tree (``docs/outputs.md``) and the ``--help`` blocks of ``docs/usage.md``."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = REPO / "docs"
SNAPSHOTS = Path(__file__).parent / "snapshots" / "help"

_FENCE = re.compile(r"^(```|~~~)")
_INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
_LINK = re.compile(r"(?<!!)\[([^\]]*)\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def prose_lines(text: str) -> list[str]:
    """The lines of ``text`` outside fenced code blocks (inside ones are replaced by '')."""
    lines, fenced = [], False
    for line in text.splitlines():
        if _FENCE.match(line.lstrip()):
            fenced = not fenced
            lines.append("")
            continue
        lines.append("" if fenced else line)
    return lines


def fenced_blocks(text: str) -> list[tuple[int, str]]:
    """Every fenced code block: (line number of its opening fence, its content)."""
    blocks, start, body = [], None, []
    for number, line in enumerate(text.splitlines()):
        if _FENCE.match(line.lstrip()):
            if start is None:
                start, body = number, []
            else:
                blocks.append((start, "\n".join(body)))
                start = None
            continue
        if start is not None:
            body.append(line)
    return blocks


def slug(title: str) -> str:
    """GitHub's anchor of a heading: link syntax and code marks dropped, lower case, every
    character but letters, digits, '_', '-' and spaces removed, spaces made '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", title)
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def headings(text: str) -> list[tuple[int, str]]:
    """(level, title) of every ATX heading outside code blocks, in order."""
    found = []
    for line in prose_lines(text):
        match = _HEADING.match(line)
        if match:
            found.append((len(match.group(1)), match.group(2)))
    return found


def anchors(text: str) -> set[str]:
    """Every heading anchor of ``text``; repeated headings get GitHub's ``-1``, ``-2``..."""
    seen: dict[str, int] = {}
    result = set()
    for _, title in headings(text):
        base = slug(title)
        count = seen.get(base, 0)
        result.add(base if count == 0 else f"{base}-{count}")
        seen[base] = count + 1
    return result


def links(text: str) -> list[tuple[int, str, str]]:
    """(line number, text, target) of every inline link outside code blocks and code spans."""
    found = []
    for number, line in enumerate(prose_lines(text), start=1):
        masked = _INLINE_CODE.sub(lambda m: "x" * len(m.group(0)), line)
        for match in _LINK.finditer(masked):
            start, end = match.span(2)
            found.append((number, match.group(1), line[start:end]))
    return found


def section(text: str, title: str, level: int = 2) -> str:
    """The text under the heading ``title`` of ``level`` up to the next heading of that level or
    higher (KeyError when there is no such heading)."""
    lines = text.splitlines()
    prose = prose_lines(text)
    start = next((i for i, line in enumerate(prose)
                  if (m := _HEADING.match(line)) and len(m.group(1)) == level
                  and m.group(2) == title), None)
    if start is None:
        raise KeyError(title)
    end = next((i for i in range(start + 1, len(lines))
                if (m := _HEADING.match(prose[i])) and len(m.group(1)) <= level), len(lines))
    return "\n".join(lines[start + 1:end])


# ------------------------------------------------------------------ the documented output tree
@dataclass(frozen=True)
class TreeEntry:
    """One entry of the documented output tree: a glob pattern relative to OUTPUT_DIR
    (``<run>``-style placeholders become ``*``), whether it is a folder listed without its
    content, and whether it appears only in the case its comment names."""

    pattern: str
    folder: bool
    optional: bool

    def matches(self, rel: str) -> bool:
        """Whether the file ``rel`` (relative to OUTPUT_DIR) is this entry or, for a folder,
        lies in it (``*`` also matches ``/``, as in :func:`fnmatch.fnmatchcase`)."""
        return fnmatch.fnmatchcase(rel, self.pattern + ("*" if self.folder else ""))


_GLYPHS = re.compile(r"^((?:│   |    |├── |└── )*)(.*)$")


def output_tree(text: str) -> list[TreeEntry]:
    """The entries of the first code block of ``text`` that starts with ``OUTPUT_DIR/``.

    Each line ``├── name  (+ .json)  # comment`` adds ``name`` (a file, or a folder when it ends
    in ``/``) under the folder of the enclosing level; ``(+ .json)`` adds the JSON beside it; a
    comment that begins with ``only`` marks an entry that a default run does not write. Lines
    without ``├──``/``└──`` continue a comment."""
    block = next(body for _, body in fenced_blocks(text) if body.startswith("OUTPUT_DIR/"))
    entries: list[TreeEntry] = []
    parents: list[str] = []
    listed_children: set[str] = set()
    raw: list[tuple[str, bool, bool]] = []
    for line in block.splitlines()[1:]:
        glyphs, rest = _GLYPHS.match(line).groups()
        if not glyphs.endswith(("├── ", "└── ")):
            continue
        depth = len(glyphs) // 4 - 1
        name, _, comment = rest.partition("#")
        sidecar = "(+ .json)" in name
        name = name.replace("(+ .json)", "").strip()
        optional = comment.strip().startswith("only")
        del parents[depth:]
        path = "".join(parents) + re.sub(r"<[^>]+>", "*", name)
        if parents:
            listed_children.add("".join(parents))
        if name.endswith("/"):
            parents.append(re.sub(r"<[^>]+>", "*", name))
        raw.append((path, optional, sidecar))
    for path, optional, sidecar in raw:
        folder = path.endswith("/")
        if folder and path in listed_children:
            continue  # a folder whose content is listed: its entries say what it holds
        entries.append(TreeEntry(path, folder, optional))
        if sidecar:
            json = re.sub(r"(\.nii\.gz|\.tsv)$", ".json", path)
            entries.append(TreeEntry(json, False, optional))
    return entries


# ------------------------------------------------------------------------ docs/usage.md
def help_snapshots() -> dict[str, str]:
    """``--help`` text per command (``bids_stroke model info``) from ``tests/snapshots/help``."""
    result = {}
    for path in sorted(SNAPSHOTS.glob("*.txt")):
        _, _, body = path.read_text().partition("\n")
        result[path.stem.replace("_", " ").replace("bids stroke", "bids_stroke")] = body
    return result


def help_blocks(text: str) -> dict[str, str]:
    """The first code block under each ``## bids_stroke ...`` heading of ``text``."""
    result = {}
    for level, title in headings(text):
        if level == 2 and title.startswith("`bids_stroke"):
            body = section(text, title)
            blocks = fenced_blocks(body)
            result[title.strip("`")] = blocks[0][1] + "\n" if blocks else ""
    return result
