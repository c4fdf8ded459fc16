"""Hostile content (issue 17): what a dataset, a suite, a prompt file or a model writes stays inert.

* titles, explanations, labels with HTML/JS, Markdown/LaTeX control sequences and ANSI escapes,
  rendered to the HTML board, the Markdown (file and terminal), the LaTeX table and the CSV;
* an explainer label that is a path (``../../x``) is refused before anything is written;
* prompt templates run in Jinja2's sandbox; YAML ``!!python`` tags are refused;
* a static check of the package: no unsafe loader calls, no ``trust_remote_code=True`` literal,
  no ``shell=True``, no ``eval``/``exec``, every Jinja2 environment escaping or sandboxed.

Each case is one row of the hostile-content table of ``docs/RELIABILITY.md``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from reliability_doc import cell, check_block
from report_fixtures import HOSTILE_EXPLANATION, HOSTILE_NAME, make_explained_results, make_manifest

from bench.cli import main
from bench.errors import ConfigError

PACKAGE = Path(__import__("bench").__file__).parent

#: one string carrying every kind of markup a renderer could obey
PAYLOAD = (
    "<script>alert('x')</script><img src=x onerror=alert(1)>"
    "|**bold**|`code`[link](javascript:alert(1))"
    "\\input{/etc/passwd}\\write18{rm -rf /}$x^2$%&#_"
    "\x1b[31mRED\x1b[0m\x1b]0;title\x07"
    "../../evil"
)
ROWS: dict[str, str] = {}


def _swap(results: dict) -> dict:
    text = json.dumps(results)
    for old in (HOSTILE_NAME, HOSTILE_EXPLANATION):
        text = text.replace(json.dumps(old)[1:-1], json.dumps(PAYLOAD)[1:-1])
    assert json.dumps(HOSTILE_NAME)[1:-1] not in text and json.dumps(PAYLOAD)[1:-1] in text
    return json.loads(text)


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    from bench.report import render_leaderboard
    from bench.report.writers import markdown

    results = _swap(make_explained_results())
    results["dataset"]["name"] = PAYLOAD
    out = tmp_path_factory.mktemp("board")
    render_leaderboard(results, make_manifest(), out_dir=out)
    files = {
        p.name: p.read_text(encoding="utf-8")
        for p in out.iterdir()
        if p.suffix in {".html", ".md", ".tex", ".csv"}
    }
    files["terminal"] = markdown(results)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        {*files} - {"terminal"} | {"results.json", "manifest.json"}
    )
    return files


def test_html_board_keeps_markup_inert(board: dict[str, str]) -> None:
    html = board["leaderboard.html"]
    assert "alert('x')" in html.replace("&#39;", "'")  # the text is there ...
    assert "<script>alert" not in html and "<img src=x" not in html  # ... as text, never as markup
    assert "\x1b" not in html and "\x07" not in html
    ROWS["html"] = (
        "HTML board: `<script>`, `<img onerror>` escaped by Jinja2 autoescape; control characters dropped"
    )


def test_markdown_and_terminal_keep_markup_inert(board: dict[str, str]) -> None:
    for name in ("leaderboard.md", "terminal"):
        md = board[name]
        assert "\x1b" not in md and "\x07" not in md, name
        assert re.search(r"(?<!\\)<script>", md) is None and re.search(r"(?<!\\)<img", md) is None, name
        for line in md.splitlines():  # a hostile "|" never adds a column
            if PAYLOAD[:8] in line or "evil" in line:
                assert re.search(r"(?<!\\)\*\*bold", line) is None and "|**bold**|" not in line, line
        tables = [ln for ln in md.splitlines() if ln.startswith("|")]
        assert tables
    ROWS["markdown"] = (
        "Markdown file and terminal: `|`, `*`, `` ` `` and `<` backslash-escaped; ANSI/OSC escapes dropped"
    )


def test_latex_keeps_control_sequences_inert(board: dict[str, str]) -> None:
    tex = board["results.tex"]
    assert "\\input{" not in tex and "\\write18" not in tex and "\x1b" not in tex
    assert "\\textbackslash{}input" in tex
    ROWS["latex"] = "LaTeX table: `\\input`, `\\write18`, `$ % & # _ ^` escaped; control characters dropped"


def test_csv_is_plain_data(board: dict[str, str]) -> None:
    import csv
    import io

    rows = list(csv.reader(io.StringIO(board["results.csv"])))
    assert len({len(r) for r in rows}) == 1  # quoting keeps every hostile comma/quote inside its cell
    ROWS["csv"] = "CSV: quoted by the csv module, every row keeps its column count"


@pytest.mark.parametrize("label", ["../../x", "a/b", ".hidden", "x\x1b[31m", "..\\\\x"])
def test_path_like_labels_are_refused(label: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "deep" / "run"
    code = main(
        [
            "-q",
            "run",
            "tiny",
            "--out",
            str(out),
            "--set",
            f"explainers=[{{name: random, label: {json.dumps(label)}}}]",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "label" in err and "Traceback" not in err
    assert not (tmp_path / "x").exists() and not (tmp_path / "deep" / "x").exists()
    assert "\x1b" not in err  # the error shows the label escaped (repr), not its escape code
    ROWS["labels"] = (
        "explainer labels `../../x`, `a/b`, `.hidden`, ANSI, backslashes: refused (exit 2) before any file is written"
    )


def test_prompt_templates_run_sandboxed(tmp_path: Path) -> None:
    from bench.explainers.prompts import load_prompts

    path = tmp_path / "evil.yaml"
    path.write_text(
        "version: 1\n"
        "classify: ['{{ history.__class__.__mro__[1].__subclasses__() }}']\n"
        "rank: ['{{ cycler.__init__.__globals__.os.system(\"id\") }}']\n",
        encoding="utf-8",
    )
    prompts = load_prompts(str(path))
    for kind in ("classify", "rank"):
        with pytest.raises(ConfigError, match="sandbox|undefined"):
            prompts.render(kind, history="x")
    ROWS["jinja"] = (
        "prompt templates reaching `__class__`/`__globals__`: refused by Jinja2's immutable sandbox (one-line error)"
    )


def test_yaml_python_tags_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    marker = tmp_path / "pwned"
    suite = tmp_path / "s.yaml"
    suite.write_text(f"suite: !!python/object/apply:os.system ['touch {marker}']\n", encoding="utf-8")
    assert main(["validate", str(suite)]) == 2
    assert "tag is refused" in capsys.readouterr().err and not marker.exists()
    ROWS["yaml"] = (
        "`!!python/object/apply` in a suite file: refused by `yaml.safe_load`, named in the message, nothing run"
    )


#: (pattern, why it is unsafe); a line may opt out only with an explicit `# reliability: allow` comment
UNSAFE = [
    (r"\bpickle\.loads?\(|\bimport pickle\b|\bcPickle\b|\bdill\b", "pickle runs code from the file"),
    (
        r"\byaml\.(load|full_load|unsafe_load|load_all)\(|Loader=yaml\.(Unsafe|Full)?Loader",
        "yaml.load builds Python objects",
    ),
    (r"weights_only\s*=\s*False", "torch.load without weights_only runs pickle"),
    (r"trust_remote_code\s*=\s*True", "remote code only through the explicit flag"),
    (r"shell\s*=\s*True", "a shell parses the arguments"),
    (r"(?<![\w.])(eval|exec)\(", "eval/exec run strings as code"),
    (r"\.extractall\(", "extractall follows ../ paths; extract member by member"),
]


def test_static_check_no_unsafe_calls() -> None:
    offences = []
    torch_loads = 0
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        for no, line in enumerate(text.splitlines(), 1):
            code = line.split("#", 1)[0]
            if "reliability: allow" in line:
                continue
            for pattern, why in UNSAFE:
                if re.search(pattern, code):
                    offences.append(f"{path.relative_to(PACKAGE.parent)}:{no}: {why}: {line.strip()}")
        for m in re.finditer(r"torch\.load\(", text):
            torch_loads += 1
            call = text[m.start() : text.find(")", m.start()) + 1]
            if "weights_only=True" not in call:
                offences.append(
                    f"{path.relative_to(PACKAGE.parent)}: torch.load without weights_only=True: {call}"
                )
        for m in re.finditer(r"jinja2\.Environment\(", text):
            call = text[m.start() : m.start() + 400]
            if "autoescape=True" not in call:
                offences.append(f"{path.relative_to(PACKAGE.parent)}: jinja2.Environment without autoescape")
    assert offences == [], "\n".join(offences)
    assert torch_loads >= 1  # the check sees the calls it is meant to check
    ROWS["static"] = (
        "static check of every package module: no pickle, yaml.load, eval/exec, shell=True, "
        "extractall, trust_remote_code=True literal; every torch.load passes weights_only=True; "
        "every jinja2.Environment autoescapes (prompts: sandbox)"
    )


def test_static_check_catches_what_it_should(tmp_path: Path) -> None:
    bad = (
        "import pickle\nx = yaml.load(f)\ny = torch.load(p, weights_only=False)\nf(trust_remote_code=True)\n"
    )
    hits = {why for line in bad.splitlines() for pattern, why in UNSAFE if re.search(pattern, line)}
    assert len(hits) == 4


def test_hostile_doc_table() -> None:
    if len(ROWS) < 8:
        pytest.skip("the table needs every case of this module in the same session")
    order = ["html", "markdown", "latex", "csv", "labels", "jinja", "yaml", "static"]
    lines = ["| # | hostile content | where it stays inert |", "|---|---|---|"]
    lines += [f"| {n} | {k} | {cell(ROWS[k])} |" for n, k in enumerate(order, 1)]
    check_block("hostile", "\n".join(lines))
