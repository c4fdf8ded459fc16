"""``recxbench`` command line: run, list, validate, data fetch, report, compare.

User mistakes (bad path, bad YAML key, unknown explainer, malformed data line) print one line
and exit 2; ``compare`` exits 1 when something regressed.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import NoReturn

from bench.device import DEVICES
from bench.errors import UserError
from bench.lmeval.commands import add_lmeval_commands

log = logging.getLogger("bench")


def _setup_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity < 0 else logging.INFO if verbosity == 0 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname).1s %(name)s: %(message)s", "%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


class _Parser(argparse.ArgumentParser):
    """argparse with the project's error contract: one line on stderr, exit 2, no usage block."""

    def error(self, message: str) -> NoReturn:  # type: ignore[override]
        sys.stderr.write(f"recxbench: error: {self.prog}: {message} — fix: see `{self.prog} --help`\n")
        raise SystemExit(2)


def _progress_enabled() -> bool:
    return sys.stderr.isatty()


def cmd_run(args: argparse.Namespace) -> int:
    from bench.config import load_suite
    from bench.data.resolve import check_suite_dataset
    from bench.evidence import check_claims
    from bench.io import check_run_dir, run_lock
    from bench.judge import probe_http_judges
    from bench.registry import load_plugin
    from bench.runner import RunOptions, instantiate_explainers, instantiate_tasks, run_suite

    for module in args.plugin or []:
        load_plugin(module)
    overrides = list(args.set or [])
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    suite = load_suite(args.suite, overrides=overrides)
    # validate everything that can be validated before any work starts
    tasks = instantiate_tasks(suite)
    instantiate_explainers(suite)
    check_claims(list(suite.claims), [e.label for e in suite.explainers], tasks)
    check_suite_dataset(suite)
    probe_http_judges(t.params.get("judge") for t in tasks.values())
    out = Path(args.out) if args.out else Path("runs") / suite.name
    device = args.device or suite.device
    check_run_dir(out, suite.name)
    with run_lock(out):
        results = run_suite(suite, RunOptions(out=out, device=device, progress=_progress_enabled()))
    from bench.report.writers import markdown

    sys.stdout.write(markdown(results) + "\n")
    sys.stdout.write(f"\nrun directory: {out}\n")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from bench import registry
    from bench.data.resolve import BUILTIN
    from bench.data.sources import format_names
    from bench.resources import suites_dir, tasks_dir

    for module in args.plugin or []:  # plugins may add tasks, explainers and datasets
        registry.load_plugin(module)
    what = args.what
    if what == "tasks":
        import yaml

        rows = []
        for p in sorted(tasks_dir().glob("*.yaml")):
            d = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
            rows.append(
                [
                    d.get("task", p.stem),
                    d.get("kind", "?"),
                    d.get("main_metric", "?"),
                    str(d.get("description", "")).strip().split("\n")[0],
                ]
            )
        sys.stdout.write(tabulate(rows, headers=["task", "kind", "main metric", "description"]) + "\n")
    elif what == "explainers":
        rows = []
        for name in registry.explainers.names():
            try:
                cls = registry.explainers.get(name)
                rows.append([name, cls.access, cls.summary])
            except ImportError as err:  # optional dependency missing
                rows.append([name, "?", f"(unavailable: {err})"])
        sys.stdout.write(tabulate(rows, headers=["explainer", "access", "what it is"]) + "\n")
    elif what == "datasets":
        rows = [[k, v] for k, v in BUILTIN.items()]
        formats = "|".join(format_names())
        rows.append(["<path>", f"your own: --set dataset.path=DIR [dataset.format=auto|{formats}]"])
        sys.stdout.write(tabulate(rows, headers=["dataset", "what it is"]) + "\n")
    elif what == "recipes":
        from bench.data.recipes import recipe_names

        rows = [[k, v] for k, v in recipe_names().items()]
        sys.stdout.write(tabulate(rows, headers=["recipe", "what it does"]) + "\n")
    elif what == "suites":
        import yaml

        rows = []
        for p in sorted(suites_dir().glob("*.yaml")):
            d = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
            rows.append([p.stem, str(d.get("description", "")).strip().split("\n")[0]])
        sys.stdout.write(tabulate(rows, headers=["suite", "description"]) + "\n")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from bench.config import load_suite
    from bench.data.resolve import check_suite_dataset
    from bench.evidence import check_claims
    from bench.registry import load_plugin
    from bench.runner import instantiate_explainers, instantiate_tasks

    for module in args.plugin or []:
        load_plugin(module)
    suite = load_suite(args.suite, overrides=list(args.set or []))
    tasks = instantiate_tasks(suite)
    explainers = instantiate_explainers(suite)
    check_claims(list(suite.claims), [e.label for e in suite.explainers], tasks)
    check_suite_dataset(suite)
    ds = suite.dataset
    sys.stdout.write(
        f"suite {suite.name} ({suite.path}) is valid\n"
        f"  dataset: {ds.path or ds.name}   target: {suite.target.name}   seed: {suite.seed}\n"
        f"  tasks: {', '.join(f'{t} ({task.spec.kind}, main {task.spec.main_metric})' for t, task in tasks.items())}\n"
        f"  explainers: {', '.join(f'{k} [{e.access}]' for k, e in explainers.items())}\n"
        f"  claims: {len(suite.claims)}\n"
    )
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from bench.data.downloads import fetch_dataset

    path = fetch_dataset(args.name)
    sys.stdout.write(f"{args.name}: {path}\n")
    return 0


def cmd_data_info(args: argparse.Namespace) -> int:
    """``recxbench data info PATH``: the papers' dataset table after a recipe."""
    from tabulate import tabulate

    from bench.config.load import parse_set
    from bench.data.loaders import load_dataset
    from bench.data.recipes import apply_recipe, recipe_card
    from bench.registry import load_plugin

    for module in args.plugin or []:  # plugins may add formats and recipes
        load_plugin(module)
    params = dict(parse_set(args.set or []))
    ds = apply_recipe(load_dataset(args.path, format=args.format), args.recipe, params)
    s = ds.summary()
    row = [ds.name, s["users"], s["items"], s["interactions"], s["avg_per_user"], s["avg_per_item"]]
    headers = ["dataset", "#users", "#items", "#interactions", "avg/user", "avg/item", "sparsity"]
    table = tabulate([[*row, f"{100 * s['sparsity']:.3f}%"]], headers=headers, floatfmt=".2f", intfmt=",")
    card = recipe_card(ds) or {"name": args.recipe, "params": params}
    sys.stdout.write(f"{table}\nformat: {ds.extra.get('format', '?')}   recipe: {card}\n")
    return 0


def _add_data_info(dsub: argparse._SubParsersAction) -> None:
    info = dsub.add_parser("info", help="users/items/interactions/sparsity of a dataset after a recipe")
    info.add_argument("path", help="a dataset directory (or a file in it)")
    info.add_argument(
        "--format", default="auto", help="auto or a registered format (recxbench list datasets)"
    )
    info.add_argument("--recipe", default="none", help="none, recexplainer, lane (recxbench list recipes)")
    info.add_argument("--set", action="append", metavar="PARAM=VALUE", help="a recipe parameter, e.g. k=20")
    info.add_argument("--plugin", action="append", metavar="MODULE", help="import MODULE first")
    info.set_defaults(func=cmd_data_info)


def cmd_models(args: argparse.Namespace) -> int:
    from bench.llm.smollm2 import fetch_model

    path = fetch_model(args.name)
    sys.stdout.write(f"{args.name}: {path}\n")
    return 0


def cmd_judge_check(args: argparse.Namespace) -> int:
    from bench.judge.check import format_report, run_judge_check

    result = run_judge_check(
        args.judge, model=args.model, api_key_env=args.api_key_env, device=args.device, mode=args.mode
    )
    sys.stdout.write(format_report(result) + "\n")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from bench.io import read_json
    from bench.report import render_leaderboard
    from bench.results import load_results

    results, manifests = [], []
    for d in args.run_dirs:
        d = Path(d)
        # validated (a recxbench results.json of this schema), then rendered from the file's dict
        results.append(dict(load_results(d).raw))
        manifests.append(read_json(d / "manifest.json") if (d / "manifest.json").exists() else {})
    out = Path(args.out)
    page = render_leaderboard(
        results if len(results) > 1 else results[0],
        manifests if len(manifests) > 1 else manifests[0],
        out_dir=out,
    )
    sys.stdout.write(f"leaderboard: {page}\n")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from bench.compare import compare_runs

    report = compare_runs(
        Path(args.run_dir),
        Path(args.baseline),
        alpha=args.alpha,
        tolerance=args.tolerance,
        resamples=args.resamples,
    )
    sys.stdout.write(report.markdown + "\n")
    return 1 if report.regressions else 0


def cmd_export(args: argparse.Namespace) -> int:
    from bench.export import export_run

    dest = export_run(Path(args.run_dir), Path(args.out), samples=not args.no_samples)
    sys.stdout.write(f"exported {args.run_dir} -> {dest}\n")
    return 0


def _split_lm_eval(
    parser: argparse.ArgumentParser, argv: list[str]
) -> tuple[argparse.Namespace, list[str] | None]:
    """``recxbench [-q|-v] lm-eval ARGS...``: everything after ``lm-eval`` is lm-eval's, unparsed."""
    head = 0
    while head < len(argv) and argv[head].startswith("-") and argv[head] not in ("-h", "--help"):
        head += 1
    if head < len(argv) and argv[head] == "lm-eval":
        return parser.parse_args(argv[: head + 1]), argv[head + 1 :]
    return parser.parse_args(argv), None


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="recxbench", description="Benchmark explainers of recommender systems.")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    p.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run a suite and write a run directory")
    r.add_argument("suite", help="suite name (tasks/suites/NAME.yaml) or path to a suite YAML")
    r.add_argument("--out", help="run directory (default runs/SUITE)")
    r.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="override a suite key, e.g. dataset.path=DIR"
    )
    r.add_argument("--device", choices=DEVICES, help="where models run (default: the suite's, auto)")
    r.add_argument("--seed", type=int, help="override the suite's seed")
    r.add_argument(
        "--plugin",
        action="append",
        metavar="MODULE",
        help="import MODULE first (its explainers, tasks, datasets)",
    )
    r.set_defaults(func=cmd_run)

    ls = sub.add_parser("list", help="list tasks, explainers, datasets or suites")
    ls.add_argument("what", choices=["tasks", "explainers", "datasets", "recipes", "suites"])
    ls.add_argument("--plugin", action="append", metavar="MODULE")
    ls.set_defaults(func=cmd_list)

    v = sub.add_parser("validate", help="check a suite without running it")
    v.add_argument("suite")
    v.add_argument("--set", action="append", metavar="KEY=VALUE")
    v.add_argument(
        "--plugin", action="append", metavar="MODULE", help="import MODULE first (its registrations)"
    )
    v.set_defaults(func=cmd_validate)

    d = sub.add_parser("data", help="dataset utilities")
    dsub = d.add_subparsers(dest="data_command", required=True)
    f = dsub.add_parser("fetch", help="download and cache a dataset (offline: says where to put the files)")
    f.add_argument(
        "name", help="ml-100k, ml-1m, steam, amazon-video-games, amazon-movies-tv or amazon-beauty"
    )
    f.set_defaults(func=cmd_data)
    _add_data_info(dsub)

    mo = sub.add_parser("models", help="model utilities")
    msub = mo.add_subparsers(dest="models_command", required=True)
    mf = msub.add_parser("fetch", help="download and cache a named model (smollm2-135m, all-minilm-l6-v2)")
    mf.add_argument("name", help="model alias (smollm2-135m: backbone; all-minilm-l6-v2: sentence encoder)")
    mf.set_defaults(func=cmd_models)

    jc = sub.add_parser("judge-check", help="agreement of a judge with the shipped graded explanations")
    jc.add_argument(
        "--judge",
        default="smollm2-135m",
        help="a backbone spec, or an OpenAI-compatible base URL (http://host:port/v1)",
    )
    jc.add_argument("--model", help="model name for an HTTP judge")
    jc.add_argument("--api-key-env", help="environment variable holding the HTTP judge's API key")
    jc.add_argument(
        "--mode",
        choices=["loglik", "generate"],
        default="loglik",
        help="local judges: pick the grade by log-likelihood or generate it",
    )
    jc.add_argument("--device", default="auto", choices=DEVICES)
    jc.add_argument(
        "--record",
        action="store_true",
        help="store the figures in tasks/judge_check/agreement.json for the board",
    )
    jc.set_defaults(func=cmd_judge_check)

    rep = sub.add_parser("report", help="render one leaderboard from one or more run directories")
    rep.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    rep.add_argument("--out", required=True, help="output directory for leaderboard.html and downloads")
    rep.set_defaults(func=cmd_report)

    ex = sub.add_parser("export", help="copy a finished run without its cache (for baselines/ and reports/)")
    ex.add_argument("run_dir")
    ex.add_argument("--out", required=True, help="destination directory (replaced atomically)")
    ex.add_argument("--no-samples", action="store_true", help="leave out samples/ (a report, not a baseline)")
    ex.set_defaults(func=cmd_export)

    c = sub.add_parser("compare", help="gate a run against a baseline run (exit 1 on regression)")
    c.add_argument("run_dir")
    c.add_argument("--baseline", required=True, help="baseline run directory (results.json + samples/)")
    c.add_argument("--alpha", type=float, default=None, help="significance level (default: the run's)")
    c.add_argument(
        "--tolerance",
        type=float,
        default=None,
        help="absolute drop tolerated for every metric (overrides the suite's tolerances)",
    )
    c.add_argument("--resamples", type=int, default=10000, help="randomization resamples")
    c.set_defaults(func=cmd_compare)
    add_lmeval_commands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args, rest = _split_lm_eval(parser, argv)
    if rest is not None:
        args.lm_eval_args = rest
    _setup_logging(-1 if args.quiet else args.verbose)
    try:
        return int(args.func(args) or 0)
    except UserError as err:
        sys.stderr.write(f"recxbench: error: {err}\n")
        return err.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("recxbench: interrupted (finished stages are cached; rerun to resume)\n")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
