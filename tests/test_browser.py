"""The leaderboard in a real browser: headless Chromium renders it, runs its script, dumps the DOM.

No driver is needed: ``chromium --headless --dump-dom URL`` prints the DOM after scripts ran
(``--virtual-time-budget`` lets the page settle). Skipped when no Chromium is installed. Set
``RECXBENCH_SAVE_SCREENSHOT=1`` to keep a screenshot of the fixture board at ``docs/leaderboard-fixture.png`` (the README's picture is of the real quick board).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from report_fixtures import (
    EXPLANATION_TASK,
    HOSTILE_DATASET,
    HOSTILE_EXPLANATION,
    HOSTILE_NAME,
    NA_EXPLAINER,
    make_explained_results,
    make_manifest,
    make_results,
)

from bench.report import render_leaderboard

pytestmark = pytest.mark.browser

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "leaderboard-fixture.png"


def _find_browser() -> str | None:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


BROWSER = _find_browser()
needs_browser = pytest.mark.skipif(
    BROWSER is None, reason=f"no headless browser found on PATH (looked for {', '.join(BROWSERS)})"
)


def _chromium(tmp_path: Path, url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    cmd = [
        str(BROWSER),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-quic",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=2000",
        *extra,
        url,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class _Dom(HTMLParser):
    """Collects the title, element counts, per table the header attributes and row names, and the
    text of every explanation block (``.expl-text``)."""

    def __init__(self) -> None:
        super().__init__()
        self.title = ""
        self.counts: dict[str, int] = {}
        self.rows: dict[str, list[str]] = {}
        self.headers: dict[str, list[dict[str, str | None]]] = {}
        self.has_js_class = False
        self._table: str | None = None
        self._in_title = False
        self.explanations: list[str] = []
        self._expl_depth = 0  # open elements inside the current .expl-text block

    def handle_starttag(self, tag, attrs):
        d = dict(attrs)
        self.counts[tag] = self.counts.get(tag, 0) + 1
        if tag == "html" and "js" in (d.get("class") or "").split():
            self.has_js_class = True
        if tag == "title":
            self._in_title = True
        if self._expl_depth and tag not in _VOID:
            self._expl_depth += 1
        elif "expl-text" in (d.get("class") or "").split():
            self.explanations.append("")
            self._expl_depth = 1
        if tag == "table":
            self._table = d.get("id")
            self.rows[self._table] = []
            self.headers[self._table] = []
        elif tag == "th" and self._table is not None:
            if d.get("scope") == "col":
                self.headers[self._table].append(d)
            elif d.get("scope") == "row":
                self.rows[self._table].append(d.get("data-sort") or "")

    def handle_endtag(self, tag):
        if tag == "title":
            self._in_title = False
        if self._expl_depth and tag not in _VOID:
            self._expl_depth -= 1
        if tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._in_title:
            self.title += data
        if self._expl_depth:
            self.explanations[-1] += data


def _render(tmp_path: Path, results: dict | None = None) -> Path:
    return render_leaderboard(results or make_results(), make_manifest(), out_dir=tmp_path / "site")


def _dump(tmp_path: Path, page: Path, fragment: str = "") -> tuple[str, _Dom]:
    dom_text = _chromium(tmp_path, page.as_uri() + fragment, "--dump-dom").stdout
    dom = _Dom()
    dom.feed(dom_text)
    return dom_text, dom


@needs_browser
def test_page_renders_tables_and_hostile_text_stays_text(tmp_path):
    page = _render(tmp_path)
    text, dom = _dump(tmp_path, page)
    assert dom.has_js_class, "the sort script did not run"
    assert dom.counts.get("table", 0) >= 7  # summary, 3 tasks, target, claims, packages, stages
    assert "PWNED" not in dom.title.replace(HOSTILE_DATASET, "")  # the title was not rewritten
    assert HOSTILE_DATASET in dom.title
    assert dom.counts.get("img", 0) == 0  # the hostile <img onerror> never became an element
    assert dom.counts.get("script", 0) == 1  # only the page's own script
    assert "<script>alert(1)</script>" not in text
    assert HOSTILE_NAME in dom.rows["summary"]
    assert dom.counts.get("svg", 0) == 3
    buttons = dom.counts.get("button", 0)
    assert buttons == sum(len(h) for h in dom.headers.values())  # every header became a sort button


@needs_browser
def test_explanation_examples_render_as_text(tmp_path):
    page = _render(tmp_path, make_explained_results())
    text, dom = _dump(tmp_path, page, f"#{EXPLANATION_TASK}-example-1")
    assert HOSTILE_EXPLANATION in dom.explanations  # the hostile explanation is a block of plain text
    assert len(dom.explanations) == 6  # 2 examples × 3 explainers
    assert dom.counts.get("img", 0) == 0 and dom.counts.get("script", 0) == 1  # nothing it holds ran
    assert "PWNED" not in dom.title.replace(HOSTILE_DATASET, "")
    assert dom.counts.get("details", 0) >= 2  # the long explanation and the metric definitions


@needs_browser
@pytest.mark.parametrize(
    ("fragment", "table", "expected"),
    [
        (
            "#sort=task-history_reconstruction:2:asc",
            "task-history_reconstruction",
            ["random", HOSTILE_NAME, "recexplainer-h", "target-oracle", NA_EXPLAINER],
        ),
        (
            "#sort=task-history_reconstruction:2:desc",
            "task-history_reconstruction",
            ["target-oracle", "recexplainer-h", HOSTILE_NAME, "random", NA_EXPLAINER],
        ),
        (
            "#sort=summary:0",
            "summary",
            [HOSTILE_NAME, NA_EXPLAINER, "random", "recexplainer-h", "target-oracle"],
        ),
    ],
)
def test_fragment_sorts_table(tmp_path, fragment, table, expected):
    page = _render(tmp_path)
    _, dom = _dump(tmp_path, page, fragment)
    assert dom.rows[table] == expected  # n/a sorts last whichever the direction
    column = int(fragment.split(":")[1])
    direction = "descending" if fragment.endswith(":desc") else "ascending"
    sorts = [h.get("aria-sort") for h in dom.headers[table]]
    assert sorts[column] == direction
    assert all(s == "none" for i, s in enumerate(sorts) if i != column)


@needs_browser
def test_screenshot(tmp_path):
    page = _render(tmp_path, make_explained_results())
    shot = tmp_path / "leaderboard.png"
    _chromium(tmp_path, page.as_uri(), f"--screenshot={shot}", "--window-size=1400,2000")
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    if os.environ.get("RECXBENCH_SAVE_SCREENSHOT") == "1":
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)
