"""The group report as a reader sees it: headless Chromium renders it on screen and in print.

Checks that the significance columns (raw p < alpha and Holm) of the test tables are inside
the visible area - the viewport and every scrolling box around them - at common screen widths,
and inside the printed page (the PDF's words, read with poppler's ``pdftotext -bbox``); and that
the findings (primary verdict first), the verdict table and the generated methods text render.
Skipped when Chromium is not installed (``scripts/ci-apt.sh`` installs it on Debian/Ubuntu).
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from bids_stroke.group.run import run_group
from bids_stroke.group.synthetic import make_synthetic_output

CHROMIUM = next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser",
                                                       "google-chrome")) if p), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed "
                                "(scripts/ci-apt.sh installs it)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--disable-dev-shm-usage"]
SIG_HEADER = re.compile(r"p < alpha$")

# Runs in a copy of the report (the report itself is static): for each header cell of a
# significance column and every cell below it, its box and the visible area around it.
PROBE = """
(function () {
  const out = [];
  for (const tid of ["wilcoxon", "datasets"]) {
    const table = document.getElementById(tid);
    if (!table) continue;
    Array.from(table.querySelectorAll("thead th")).forEach((th, i) => {
      if (!/p < alpha$/.test(th.textContent)) return;
      const rows = Array.from(table.querySelectorAll("tbody tr"));
      for (const cell of [th, ...rows.map(r => r.children[i])]) {
        const box = cell.getBoundingClientRect();
        let left = 0, right = document.documentElement.clientWidth;
        for (let e = cell.parentElement; e; e = e.parentElement) {
          if (getComputedStyle(e).overflowX !== "visible") {
            const b = e.getBoundingClientRect();
            left = Math.max(left, b.left); right = Math.min(right, b.right);
          }
        }
        out.push({table: tid, column: th.textContent, text: cell.textContent,
                  left: box.left, right: box.right, visibleLeft: left, visibleRight: right});
      }
    });
  }
  const pre = document.createElement("pre");
  pre.id = "probe";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
"""


def _chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp / 'profile'}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    """A report with both test tables (6 conditions and a dataset comparison) and a subject
    page per image for the participants' links."""
    root = tmp_path_factory.mktemp("browser")
    a = make_synthetic_output(root / "a", 10, seed=1, reports=True, sessions=["1", "2"])
    b = make_synthetic_output(root / "b", 8, seed=2)
    return run_group(a, compare={"ATLAS": a, "ISLES": b}, n_boot=100)


# Runs once the page (and its images) loaded: every table row that the full page does not
# show (clipped by a box that scrolls up and down, or past the page's end), every link out of
# the page, and per figure the share of blank (white) tiles of a 10 x 10 grid.
PAGE_PROBE = """
window.addEventListener("load", function () {
  const height = document.documentElement.scrollHeight;
  const hidden = [];
  let rows = 0;
  for (const tr of document.querySelectorAll("table tr")) {
    rows += 1;
    const box = tr.getBoundingClientRect();
    let clipped = box.top < 0 || box.bottom > height + 0.5 || box.height === 0;
    for (let e = tr.parentElement; e && !clipped; e = e.parentElement) {
      if (getComputedStyle(e).overflowY !== "visible" && e.scrollHeight > e.clientHeight + 1) {
        const b = e.getBoundingClientRect();
        clipped = box.top < b.top - 0.5 || box.bottom > b.bottom + 0.5;
      }
    }
    if (clipped) hidden.push((tr.closest("table").id || "?") + ": " + tr.textContent.slice(0, 60));
  }
  const links = Array.from(document.querySelectorAll("a[href]"))
    .filter(a => !a.getAttribute("href").startsWith("#")).map(a => a.href);
  const figures = [];
  for (const img of document.querySelectorAll("figure img")) {
    const c = document.createElement("canvas");
    c.width = img.naturalWidth; c.height = img.naturalHeight;
    const ctx = c.getContext("2d");
    ctx.drawImage(img, 0, 0);
    const px = ctx.getImageData(0, 0, c.width, c.height).data;
    let blank = 0;
    for (let ty = 0; ty < 10; ty++) for (let tx = 0; tx < 10; tx++) {
      let white = true;
      const y0 = Math.floor(ty * c.height / 10), y1 = Math.floor((ty + 1) * c.height / 10);
      const x0 = Math.floor(tx * c.width / 10), x1 = Math.floor((tx + 1) * c.width / 10);
      for (let y = y0; y < y1 && white; y++) for (let x = x0; x < x1; x++) {
        const i = 4 * (y * c.width + x);
        if (px[i] < 245 || px[i + 1] < 245 || px[i + 2] < 245) { white = false; break; }
      }
      if (white) blank += 1;
    }
    figures.push({alt: img.alt, blank: blank / 100});
  }
  const pre = document.createElement("pre");
  pre.id = "probe";
  pre.textContent = JSON.stringify({rows: rows, hidden: hidden, links: links, figures: figures});
  document.body.appendChild(pre);
});
"""


def test_full_page_shows_every_row_links_resolve_and_figures_are_drawn(report: Path,
                                                                       tmp_path: Path) -> None:
    """What a reader and a screenshot of the whole page see: every row of every table (no
    box scrolling up and down), participants linked to subject reports that exist inside
    OUT, and figures that are not mostly empty."""
    from urllib.parse import unquote, urlparse

    probe = report.with_name("probe.html")  # beside the report: relative links resolve
    probe.write_text(report.read_text().replace("</body>",
                                                f"<script>{PAGE_PROBE}</script></body>"))
    try:
        res = _chromium(tmp_path, "--window-size=1280,900", "--virtual-time-budget=10000",
                        "--dump-dom", probe.as_uri())
    finally:
        probe.unlink()
    found = re.search(r'<pre id="probe">(.*?)</pre>', res.stdout, re.S)
    assert found, f"Chromium did not run the probe: {res.stderr[-2000:]}"
    page = json.loads(html.unescape(found.group(1)))
    n_rows = report.read_text().count("<tr>")
    assert page["rows"] == n_rows > 100 and page["hidden"] == [], page["hidden"][:5]
    out = report.parent.resolve()
    targets = [Path(unquote(urlparse(u).path)) for u in page["links"]]
    pages = sorted(out.glob("sub-*.html"))
    assert len(pages) == 20 and set(targets) == set(pages)  # every subject page, each linked
    assert all(t.is_file() and t.resolve().is_relative_to(out) for t in targets)
    assert page["figures"] and all(f["blank"] < 0.5 for f in page["figures"]), page["figures"]


@pytest.mark.parametrize("width", [1280, 1024])
def test_significance_columns_are_on_screen(report: Path, tmp_path: Path, width: int) -> None:
    probe = tmp_path / "probe.html"
    probe.write_text(report.read_text().replace("</body>", f"<script>{PROBE}</script></body>"))
    res = _chromium(tmp_path, f"--window-size={width},900", "--virtual-time-budget=5000",
                    "--dump-dom", probe.as_uri())
    found = re.search(r'<pre id="probe">(.*?)</pre>', res.stdout, re.S)
    assert found, f"Chromium did not run the probe: {res.stderr[-2000:]}"
    cells = json.loads(html.unescape(found.group(1)))
    assert {c["table"] for c in cells} == {"wilcoxon", "datasets"}
    assert {c["column"] for c in cells} == {"p < alpha", "Holm p < alpha"}
    assert {c["text"] for c in cells} >= {"yes", "no"}
    hidden = [c for c in cells if c["left"] < c["visibleLeft"] - 0.5
              or c["right"] > c["visibleRight"] + 0.5]
    assert not hidden, hidden[:3]


def test_report_renders_to_png(report: Path, tmp_path: Path) -> None:
    png = tmp_path / "report.png"
    _chromium(tmp_path, "--window-size=1280,2400", f"--screenshot={png}", report.as_uri())
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


def _pdf_words(pdf: Path) -> list[tuple[float, float, float, str]]:
    """(page width, xMin, xMax, word) of every word (``pdftotext -bbox``)."""
    out = subprocess.run(["pdftotext", "-bbox", str(pdf), "-"], capture_output=True,
                         text=True, check=True, timeout=120).stdout
    words = []
    for page in re.finditer(r'<page width="([\d.]+)"[^>]*>(.*?)</page>', out, re.S):
        width = float(page.group(1))
        for w in re.finditer(r'<word xMin="([\d.-]+)" yMin="[\d.-]+" xMax="([\d.-]+)" '
                             r'yMax="[\d.-]+">(.*?)</word>', page.group(2)):
            words.append((width, float(w.group(1)), float(w.group(2)),
                          html.unescape(w.group(3))))
    return words


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")
def test_significance_columns_are_printed(report: Path, tmp_path: Path) -> None:
    pdf = tmp_path / "report.pdf"
    _chromium(tmp_path, "--no-pdf-header-footer", f"--print-to-pdf={pdf}", report.as_uri())
    assert pdf.read_bytes()[:5] == b"%PDF-"
    words = _pdf_words(pdf)
    assert words, "no text in the PDF"
    outside = [w for w in words if w[1] < -0.5 or w[2] > w[0] + 0.5]
    assert not outside, outside[:5]
    text = [w[3] for w in words]
    # both significance headers of both tables, and their yes/no cells
    assert text.count("alpha") >= 4
    n_rows = sum(1 for line in report.read_text().split("<tr>")
                 if '<td class="t">yes</td>' in line or '<td class="t">no</td>' in line)
    assert text.count("yes") + text.count("no") >= 2 * n_rows > 0


# Runs in a copy of the report: the text a reader sees (innerText: rendered, not hidden) of the
# findings, the verdict table and the methods section, with their on-screen sizes.
READ = """
(function () {
  const out = {};
  for (const id of ["findings", "verdicts", "methods"]) {
    const h = document.getElementById(id);
    const sec = h ? h.closest("section") || h : null;
    if (!sec) continue;
    const box = sec.getBoundingClientRect();
    out[id] = {text: sec.innerText, width: box.width, height: box.height,
               items: Array.from(sec.querySelectorAll("li")).map(li => li.innerText)};
  }
  const pre = document.createElement("pre");
  pre.id = "read";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
"""


def test_findings_and_methods_render(report: Path, tmp_path: Path) -> None:
    """The findings open with the primary metric's verdict and the methods text with its
    references is rendered (visible, with content) in the browser."""
    probe = tmp_path / "read.html"
    probe.write_text(report.read_text().replace("</body>", f"<script>{READ}</script></body>"))
    res = _chromium(tmp_path, "--window-size=1280,900", "--virtual-time-budget=5000",
                    "--dump-dom", probe.as_uri())
    found = re.search(r'<pre id="read">(.*?)</pre>', res.stdout, re.S)
    assert found, f"Chromium did not run the probe: {res.stderr[-2000:]}"
    seen = json.loads(html.unescape(found.group(1)))
    assert set(seen) == {"findings", "verdicts", "methods"}
    assert all(v["width"] > 300 and v["height"] > 50 for v in seen.values())
    first = seen["findings"]["items"][0]
    assert first.startswith("At crude 2 mm (crude2), Dice was ") and "native" in first
    assert re.search(r"Hodges.Lehmann change", first) and "CI" in first
    assert any(i.startswith("Exploratory") for i in seen["findings"]["items"])
    assert "equivalent" in seen["verdicts"]["text"] or "inconclusive" in seen["verdicts"]["text"]
    methods = seen["methods"]["text"]
    assert "The primary endpoint was Dice" in methods and "References" in methods
    assert "Hodges JL, Lehmann EL" in methods and "Brunner E, Munzel U" in methods
    md = (report.parent / "group_methods.md").read_text().split("\n\n")
    paragraphs = [p for p in md if p and not p.startswith(("#", "*", "1. "))]
    assert len(paragraphs) >= 4 and all(p.strip() in methods for p in paragraphs)
