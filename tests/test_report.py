"""Tests for bench.report: table models, Markdown/CSV/LaTeX writers, SVG plots and the HTML page."""

from __future__ import annotations

import copy
import csv
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from report_fixtures import (
    EXPLANATION_TASK,
    HOSTILE_DATASET,
    HOSTILE_EXPLANATION,
    HOSTILE_NAME,
    JUDGE_ID,
    LOW_AGREEMENT,
    NA_EXPLAINER,
    incomparable_pair,
    make_explained_results,
    make_manifest,
    make_results,
    make_run_pair,
)

from bench.errors import UserError
from bench.io import atomic_write_text
from bench.report import (
    claims_table,
    csv_text,
    diff_to_best_svg,
    latex,
    latex_escape,
    markdown,
    render_leaderboard,
    summary_table,
    task_table,
    write_csv,
    write_latex,
    write_markdown,
)
from bench.report.explain import CAUTION, explanation_view, explanation_views

SCRIPT = "<script>alert(1)</script>"
ESCAPED_SCRIPT = "&lt;script&gt;alert(1)&lt;/script&gt;"


@pytest.fixture()
def results() -> dict:
    return make_results()


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("leaderboard")
    path = render_leaderboard(make_results(), make_manifest(), out_dir=out)
    return path, path.read_text(encoding="utf-8")


def _row(table, key):
    return next(r for r in table.rows if r.key == key)


# ----------------------------------------------------------------------------------- tables


def test_summary_sorted_by_mean_rank_over_applicable_tasks(results):
    table = summary_table(results)
    assert [r.key for r in table.rows] == [
        "target-oracle",
        "recexplainer-h",
        HOSTILE_NAME,
        NA_EXPLAINER,
        "random",
    ]
    probe = _row(table, NA_EXPLAINER)
    assert probe.cells[-1].text == "3.50"  # mean of groups 3 and 4; the missing task is not counted
    assert probe.cells[-2].text == "2/3"
    history = [c.key for c in table.columns].index("history_reconstruction")
    assert probe.cells[history].text == "n/a" and probe.cells[history].na
    assert _row(table, "target-oracle").cells[-1].best


def test_task_table_order_markers_and_na_last(results):
    table = task_table(results, "history_reconstruction")
    assert [r.key for r in table.rows] == [
        "target-oracle",
        "recexplainer-h",
        HOSTILE_NAME,
        "random",
        NA_EXPLAINER,
    ]
    main = [c.key for c in table.columns].index("hcr@9")
    assert table.columns[main].main
    best, second = table.rows[0].cells[main], table.rows[1].cells[main]
    assert best.text == "0.710 ± 0.030" and best.best and best.marker == ""
    assert second.marker == "▼"
    assert best.sup == "bcd"  # significantly better than every other applicable row
    assert all(c.text == "n/a" for c in table.rows[-1].cells[2:])
    assert table.notes and NA_EXPLAINER in table.notes[0]


def test_task_table_interval_style(results):
    table = task_table(results, "item_ranking", ci_style="interval")
    assert table.rows[0].cells[2].text == "0.950 [0.928, 0.972]"
    with pytest.raises(ValueError):
        task_table(results, "item_ranking", ci_style="bogus")


def test_lower_is_better_metric_best_is_lowest(results):
    table = task_table(results, "next_item")
    col = [c.key for c in table.columns].index("hallucination_rate")
    assert table.columns[col].label.endswith("↓")
    bests = [r.key for r in table.rows if r.cells[col].best]
    assert bests == ["recexplainer-h"]
    oracle = _row(table, "target-oracle").cells[col]
    assert oracle.text == "n/a" and not oracle.best


def test_lower_is_better_main_metric_sorts_ascending(results):
    results["tasks"]["next_item"]["main_metric"] = "hallucination_rate"
    table = task_table(results, "next_item")
    assert table.rows[0].key == "recexplainer-h"  # lowest rate first
    assert table.rows[-1].key == "target-oracle"  # no value: n/a, last
    assert table.sorted_desc is False


def test_comparison_found_either_way_round(results):
    swapped = copy.deepcopy(results)
    for c in swapped["comparisons"]:
        c["a"], c["b"], c["diff"] = c["b"], c["a"], -c["diff"]
    for task in results["tasks"]:
        assert task_table(results, task) == task_table(swapped, task)


def test_claims_table_has_all_verdicts(results):
    table = claims_table(results)
    assert [r.cells[1].badge for r in table.rows] == [
        "verdict-supported",
        "verdict-refuted",
        "verdict-inconclusive",
    ]


# ----------------------------------------------------------------------------------- writers


def test_markdown_content(results):
    text = markdown(results)
    for heading in (
        "## Summary",
        "### next_item",
        "### item_ranking",
        "### history_reconstruction",
        "## Claims",
    ):
        assert heading in text
    assert "**0.980 ± 0.021**" in text
    assert "0.410 ± 0.032 ▼" in text
    assert "sasrec (test)" in text and "popularity baseline (test)" in text and "0.124" in text
    probe_line = next(line for line in text.splitlines() if line.startswith(f"| {NA_EXPLAINER}"))
    assert "n/a" in probe_line and "0.000" not in probe_line
    assert "α = 0.05" in text and "Holm" in text
    for verdict in ("supported", "refuted", "inconclusive"):
        assert verdict in text


def test_markdown_escapes_pipes(results):
    results["explainers"]["a|b"] = results["explainers"].pop("random")
    for r in results["results"]:
        if r["explainer"] == "random":
            r["explainer"] = "a|b"
    text = markdown(results)
    assert "a\\|b" in text
    expected = None
    for line in text.splitlines():
        if not line.startswith("|"):
            expected = None
            continue
        count = len(re.findall(r"(?<!\\)\|", line))
        expected = count if expected is None else expected
        assert count == expected, line


def test_csv_one_row_per_entry(results, tmp_path):
    path = write_csv(results, tmp_path / "results.csv")
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    assert len(rows) == len(results["results"])
    names = {r["explainer"] for r in rows}
    assert HOSTILE_NAME in names
    assert not any(r["explainer"] == NA_EXPLAINER and r["task"] == "history_reconstruction" for r in rows)
    first = rows[0]
    src = results["results"][0]
    assert float(first["value"]) == src["value"] and int(first["group"]) == src["group"]
    assert first["main_metric"] == "true" and first["dataset"] == HOSTILE_DATASET
    hall = next(r for r in rows if r["metric"] == "hallucination_rate")
    assert hall["higher_is_better"] == "false"
    assert csv_text(results) == path.read_text(encoding="utf-8")


def test_latex_escaping_and_structure(results, tmp_path):
    path = write_latex(results, tmp_path / "results.tex")
    tex = path.read_text(encoding="utf-8")
    assert tex.count(r"\toprule") == tex.count(r"\bottomrule") == 4  # summary + 3 tasks
    assert r"\textless{}script\textgreater{}alert(1)\textless{}/script\textgreater{} \& co" in tex
    assert r"next\_item" in tex and r"$\pm$" in tex and "n/a" in tex
    body = "\n".join(line for line in tex.splitlines() if not line.startswith("%"))
    assert "<" not in body and ">" not in body and "±" not in body
    assert latex(results) == tex


def test_latex_escape_specials():
    assert latex_escape(r"a_b & 50% $x$ #1 {y} ~z ^w \v") == (
        r"a\_b \& 50\% \$x\$ \#1 \{y\} \textasciitilde{}z \textasciicircum{}w \textbackslash{}v"
    )


def test_atomic_writes_leave_no_tmp_and_keep_old_file_on_failure(results, tmp_path, monkeypatch):
    target = tmp_path / "leaderboard.md"
    write_markdown(results, target)
    before = target.read_text(encoding="utf-8")

    def boom(*_args, **_kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("bench.report.writers.os.replace", boom)
    with pytest.raises(OSError):
        atomic_write_text(target, "partial")
    assert target.read_text(encoding="utf-8") == before
    assert not list(tmp_path.glob("*.tmp"))


# ----------------------------------------------------------------------------------- plots


def test_svg_escapes_labels_and_is_self_contained(results):
    svg = diff_to_best_svg(results, results["comparisons"], "item_ranking", "ndcg@5")
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert SCRIPT not in svg and "<script" not in svg
    assert ESCAPED_SCRIPT in svg
    assert "http" not in svg and "<?xml" not in svg and "DOCTYPE" not in svg
    ids = set(re.findall(r'\bid="([^"]+)"', svg))
    refs = set(re.findall(r'(?:href="|url\()#([^")]+)', svg))
    assert refs and refs <= ids


def test_svg_from_entries_and_rcparams_untouched(results):
    import matplotlib

    before, backend = dict(matplotlib.rcParams), matplotlib.get_backend()
    svg = diff_to_best_svg(
        results["results"], None, "next_item", "hallucination_rate", higher_is_better=False, id_prefix="x"
    )
    assert "<text" in svg and 'id="x-' in svg
    assert dict(matplotlib.rcParams) == before and matplotlib.get_backend() == backend


# ----------------------------------------------------------------------------------- HTML


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        d = dict(attrs)
        self.tags.append((tag, d))
        if "id" in d:
            self.ids.append(d["id"])


def test_html_has_every_section_in_order(page):
    _, html = page
    order = [
        'class="masthead"',
        'id="summary-section"',
        'id="tasks-section"',
        'id="plots-section"',
        'id="target-section"',
        'id="protocol-section"',
        'id="claims-section"',
        'id="provenance"',
        'id="downloads"',
    ]
    positions = [html.index(marker) for marker in order]
    assert positions == sorted(positions)
    assert html.count("<svg") == 3
    assert "α = 0.05" in html and "Holm" in html
    for cls in ("verdict-supported", "verdict-refuted", "verdict-inconclusive", "grp g1", "access-white-box"):
        assert cls in html
    assert "<strong>0.980 ± 0.021</strong>" in html
    assert "sasrec (test)" in html and "popularity baseline (test)" in html
    assert "chronological leave-one-out" in html and "align_test: 283" in html
    assert "torch" in html and "2.5.1" in html and "cpu (16 cores)" in html


def test_html_escapes_hostile_strings(page):
    _, html = page
    assert SCRIPT not in html
    assert ESCAPED_SCRIPT in html
    assert "<img" not in html
    assert html.count("<script") == 1  # the page's own sort script
    collector = _Collector()
    collector.feed(html)
    assert [t for t, _ in collector.tags].count("script") == 1
    assert not any(k.startswith("on") for _, attrs in collector.tags for k in attrs)


def test_html_has_no_external_references(page):
    path, html = page
    data = json.dumps(make_results()) + json.dumps(make_manifest())
    for url in re.findall(r"https?://[^\s\"'<>)]+", html):
        assert url in data, url
    assert "<link" not in html and "@import" not in html
    assert re.findall(r"url\((?!#)", html) == []
    collector = _Collector()
    collector.feed(html)
    for _, attrs in collector.tags:
        for key in ("src", "href"):
            value = attrs.get(key)
            assert value is None or not re.match(r"^[a-z]+:", value), value
    hrefs = {a["href"] for t, a in collector.tags if t == "a" and "href" in a}
    for name in ("leaderboard.md", "results.csv", "results.tex", "results.json", "manifest.json"):
        assert name in hrefs and (path.parent / name).is_file()


def test_html_sort_attributes_and_unique_ids(page):
    _, html = page
    collector = _Collector()
    collector.feed(html)
    assert len(collector.ids) == len(set(collector.ids))
    tables = [a for t, a in collector.tags if t == "table"]
    assert tables and all("sortable" in a["class"] for a in tables)
    ths = [a for t, a in collector.tags if t == "th" and a.get("scope") == "col"]
    assert all(
        a["aria-sort"] in ("none", "ascending", "descending") and a["data-type"] in ("num", "text")
        for a in ths
    )
    cells = [a for t, a in collector.tags if t == "td" and "num" in a.get("class", "")]
    assert any("data-sort" in a for a in cells) and any("data-na" in a for a in cells)
    assert all("data-sort" in a or "data-na" in a for a in cells)
    assert 'data-sort="0.98"' in html
    assert "#sort=" in html and "aria-sort" in html


def test_html_csp_allows_only_its_own_script(page):
    import base64
    import hashlib

    _, html = page
    script = re.search(r"<script>(.*?)</script>", html, flags=re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in html
    assert "default-src 'none'" in html


def test_render_writes_all_files_atomically_and_keeps_results_json(tmp_path):
    original = '{"kept": true}\n'
    (tmp_path / "results.json").write_text(original, encoding="utf-8")
    path = render_leaderboard(make_results(), make_manifest(), out_dir=tmp_path)
    assert path == tmp_path / "leaderboard.html"
    for name in ("leaderboard.html", "leaderboard.md", "results.csv", "results.tex", "manifest.json"):
        assert (tmp_path / name).is_file()
    assert (tmp_path / "results.json").read_text(encoding="utf-8") == original
    assert not list(tmp_path.glob("*.tmp"))


def test_render_is_deterministic(tmp_path):
    a = render_leaderboard(make_results(), make_manifest(), out_dir=tmp_path / "a").read_text(
        encoding="utf-8"
    )
    b = render_leaderboard(make_results(), make_manifest(), out_dir=tmp_path / "b").read_text(
        encoding="utf-8"
    )
    assert a == b


def test_multiple_runs_one_page(tmp_path):
    runs, manifests = make_run_pair()
    html = render_leaderboard(runs, manifests, out_dir=tmp_path).read_text(encoding="utf-8")
    assert 'id="across-runs"' in html and 'id="cross-run"' in html
    assert 'id="r1-summary"' in html and 'id="r2-summary"' in html
    assert html.count("<svg") == 6
    for name in ("results-r1.json", "results-r2.json", "manifest-r1.json", "manifest-r2.json"):
        assert (tmp_path / name).is_file()
    assert SCRIPT not in html
    md = (tmp_path / "leaderboard.md").read_text(encoding="utf-8")
    assert "## Across runs" in md and md.count("### Summary") == 2
    rows = list(csv.DictReader(io.StringIO((tmp_path / "results.csv").read_text(encoding="utf-8"))))
    assert len(rows) == sum(len(r["results"]) for r in runs)
    assert {r["seed"] for r in rows} == {"0", "1"}


def test_incomparable_runs_raise(tmp_path):
    runs, manifests = incomparable_pair()
    with pytest.raises(UserError, match="item_ranking"):
        render_leaderboard(runs, manifests, out_dir=tmp_path / "x")
    runs, manifests = make_run_pair()
    del runs[1]["tasks"]["history_reconstruction"]
    with pytest.raises(UserError, match="task set"):
        render_leaderboard(runs, manifests, out_dir=tmp_path / "y")
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_bad_input_raises_user_error(tmp_path):
    bad = make_results()
    bad["schema_version"] = 2
    with pytest.raises(UserError, match="schema_version"):
        render_leaderboard(bad, make_manifest(), out_dir=tmp_path)
    runs, _ = make_run_pair()
    with pytest.raises(UserError, match="manifest"):
        render_leaderboard(runs, make_manifest(), out_dir=tmp_path)


def test_minimal_results_render(tmp_path):
    """No comparisons, claims, protocol, baselines or stage times; an empty task; a NaN value."""
    results = make_results()
    results["comparisons"] = []
    del results["claims"], results["protocol"], results["target"]["baselines"], results["target"]["valid"]
    results["tasks"]["empty_task"] = {"main_metric": "accuracy", "metrics": [], "config_sha256": "0"}
    results["results"][0]["value"] = float("nan")
    manifest = {"harness_version": "0.1.0", "created": "2025-01-01"}
    html = render_leaderboard(results, manifest, out_dir=tmp_path).read_text(encoding="utf-8")
    assert "This suite states no claims." in html and 'id="task-empty_task"' in html
    table = task_table(results, "item_ranking")
    assert all(c.marker == "" for r in table.rows for c in r.cells)  # no comparisons: no markers
    assert table.rows[1].cells[-1].text == "n/a"  # and no p-values
    assert task_table(results, "next_item").rows[-1].cells[2].text == "n/a"  # NaN shown as n/a
    assert "n/a" in markdown(results)


# ----------------------------------------------------------------------------------- explanations

NOT_CHECKED_HTML = "not checked; run <code>recxbench judge-check</code>"


@pytest.fixture(scope="module")
def explained_page(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("explained")
    return render_leaderboard(make_explained_results(), make_manifest(), out_dir=out).read_text(
        encoding="utf-8"
    )


def test_explanation_view_model():
    view = explanation_view(make_explained_results(), EXPLANATION_TASK)
    assert view.has_block and view.judge_id == JUDGE_ID and view.caution == CAUTION
    values = {f.label: f.value for f in view.agreement}
    assert values["Cohen's κ"] == "0.000" and values["Spearman ρ"] == "0.093"
    assert values["n (graded explanations)"] == "24"
    assert [b.explainer for b in view.bars] == ["recexplainer-h", HOSTILE_NAME, "random"]  # best first
    assert set(view.bars_na) == {"target-oracle", NA_EXPLAINER}
    for bar in view.bars:
        assert [s.grade for s in bar.segments] == [0, 1, 2, 3]
        assert sum(s.width for s in bar.segments) == pytest.approx(100, abs=0.05)
    assert [s.text for s in view.bars[0].segments] == ["12 %", "25 %", "38 %", "25 %"]
    first = view.examples[0].explanations
    assert first[0].text == HOSTILE_EXPLANATION and first[0].grade == 1 and first[0].decision_text == "right"
    assert first[1].preview and len(first[1].preview) < len(first[1].text)  # long text collapsed
    empty = view.examples[1].explanations[-1]
    assert empty.grade is None and empty.grade_text == empty.cf_text == empty.decision_text == "n/a"
    good = make_explained_results(agreement={**LOW_AGREEMENT, "kappa": 0.61})
    assert explanation_view(good, EXPLANATION_TASK).caution == ""
    assert explanation_views(make_results()) == {}


def test_html_explanation_sections(explained_page):
    html = explained_page
    order = [
        'id="tasks-section"',
        f'id="task-{EXPLANATION_TASK}-section"',
        f'id="{EXPLANATION_TASK}-judge"',
        f'id="{EXPLANATION_TASK}-grades"',
        'id="plots-section"',
        'id="claims-section"',
        'id="examples-section"',
        f'id="{EXPLANATION_TASK}-example-1"',
        f'id="{EXPLANATION_TASK}-example-2"',
        'id="provenance"',
    ]
    positions = [html.index(marker) for marker in order]
    assert positions == sorted(positions)
    nav = html[html.index('<nav class="toc"') : html.index("</nav>")]
    for href in (f"#{EXPLANATION_TASK}-judge", f"#{EXPLANATION_TASK}-grades", "#examples-section"):
        assert f'href="{href}"' in nav
    assert JUDGE_ID in html
    for figure in ("0.250", "0.036", "0.093", "Weighted κ", "Spearman ρ", "graded set ml-100k.jsonl"):
        assert figure in html
    assert CAUTION.replace("'", "&#39;") in html
    for label in ("wrong decision", "insufficient / hallucinated", "acceptable", "satisfying"):
        assert label in html
    assert html.count('class="seg grade-') == 11  # 3 explainers × 4 grades, minus one 0 % share
    assert 'style="width: 50.0%"' in html
    assert "Secret Convoy 4" in html and "target: like" in html and "target: dislike" in html
    assert '<details class="expl-text">' in html and "(empty explanation)" in html
    assert "✓ decision right" in html and "✗ decision wrong" in html and "cf +0.083" in html
    collector = _Collector()
    collector.feed(html)
    assert len(collector.ids) == len(set(collector.ids))


def test_html_explanations_escaped(explained_page):
    html = explained_page
    assert HOSTILE_EXPLANATION not in html and SCRIPT not in html
    assert "Like: you loved &lt;script&gt;alert(1)&lt;/script&gt; and &lt;img src=x onerror=" in html
    assert "Heat &amp; Dust &lt;b&gt;(1983)&lt;/b&gt;" in html  # history titles too
    assert "Summer Camp 3 &amp; &lt;i&gt;Friends&lt;/i&gt;" in html
    assert "<img" not in html and "<b>" not in html and "<i>" not in html
    collector = _Collector()
    collector.feed(html)
    assert [t for t, _ in collector.tags].count("script") == 1
    assert not any(k.startswith("on") for _, attrs in collector.tags for k in attrs)


def test_html_null_agreement_says_not_checked(tmp_path):
    results = make_explained_results(agreement=None)
    html = render_leaderboard(results, make_manifest(), out_dir=tmp_path).read_text(encoding="utf-8")
    card = html[html.index(f'id="{EXPLANATION_TASK}-judge"') : html.index(f'id="{EXPLANATION_TASK}-grades"')]
    assert NOT_CHECKED_HTML in card and JUDGE_ID in card
    assert "Cohen" not in card and "Caution" not in card
    md = (tmp_path / "leaderboard.md").read_text(encoding="utf-8")
    assert f"Judge: {JUDGE_ID} — not checked; run `recxbench judge-check`" in md


def test_markdown_explanations(tmp_path):
    text = markdown(make_explained_results())
    judge = next(line for line in text.splitlines() if line.startswith("Judge:"))
    assert judge == (
        f"Judge: {JUDGE_ID} — agreement with the reference grades: accuracy 0.250, Cohen's κ 0.000, "
        "weighted κ 0.036, Spearman ρ 0.093 (n = 24)"
    )
    assert f"Caution: {CAUTION}." in text
    heading = f"#### Grade distribution ({EXPLANATION_TASK.replace('_', chr(92) + '_')})"
    grades = text[text.index(heading) :].splitlines()
    row = next(line for line in grades if line.startswith("| recexplainer-h"))
    assert "12 %" in row and "38 %" in row and "1.75" in row
    assert "Secret Convoy 4" in text and "grade 1, cf fidelity +0.083, decision right" in text
    examples = text[text.index("#### Examples") : text.index("Values: mean")]
    hostile = next(line for line in examples.splitlines() if "- recexplainer-h (grade 1" in line)
    assert "Like: you loved \\<script\\>alert(1)\\</script\\> and \\<img src=x" in hostile
    assert not re.search(r"(?<!\\)<", examples)  # no raw HTML from explanations or titles
    assert "(empty explanation)" in text
    plain = markdown(make_results())
    assert "Judge:" not in plain and "Grade distribution" not in plain and "Examples" not in plain


def test_no_explanations_render_nothing(page):
    _, html = page
    for marker in ("examples-section", "-judge", "-grades", "Grade distribution", "judge-check"):
        assert marker not in html


def test_multiple_runs_with_explanations(tmp_path):
    runs = [make_explained_results(seed=0), make_explained_results(seed=1, shift=0.01)]
    runs[1]["explanations"][EXPLANATION_TASK]["judge"]["agreement"] = None
    manifests = [make_manifest(seed=0), make_manifest(seed=1)]
    html = render_leaderboard(runs, manifests, out_dir=tmp_path).read_text(encoding="utf-8")
    for p in ("r1-", "r2-"):
        for suffix in ("judge", "grades", "example-1"):
            assert f'id="{p}{EXPLANATION_TASK}-{suffix}"' in html
        assert f'id="{p}examples-section"' in html
    assert html.count(NOT_CHECKED_HTML) == 1
    collector = _Collector()
    collector.feed(html)
    assert len(collector.ids) == len(set(collector.ids))
