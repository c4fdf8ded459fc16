"""The ``recxbench`` subcommands of lm-eval interop: ``export-lmeval``, ``import-lmeval``, ``lm-eval``.

``recxbench lm-eval ARGS...`` registers the ``recxbench`` model and runs lm-eval's own CLI on ARGS
(:func:`bench.cli.main` passes everything after ``lm-eval`` through unparsed).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.errors import UserError


def cmd_export_lmeval(args: argparse.Namespace) -> int:
    from bench.lmeval.export import export_lmeval

    names = export_lmeval(Path(args.run_dir), Path(args.out), prefix=args.prefix, plain=args.plain)
    sys.stdout.write(
        f"exported {len(names) - 1} lm-eval task(s) to {args.out}: {', '.join(names)}\n"
        f"  lm_eval --include_path {args.out} --tasks {names[-1]} --log_samples --output_path OUT ...\n"
    )
    return 0


def cmd_import_lmeval(args: argparse.Namespace) -> int:
    from bench.lmeval.importer import import_lmeval

    results = import_lmeval(Path(args.output), Path(args.run), args.name, access=args.access)
    rows = [r for r in results["results"] if r["explainer"] == args.name]
    sys.stdout.write(f"imported {args.name} into {args.run}: {len(rows)} result rows; board rewritten\n")
    return 0


def cmd_lm_eval(args: argparse.Namespace) -> int:
    try:
        from lm_eval.__main__ import cli_evaluate

        import bench.lmeval.model  # noqa: F401  (registers the `recxbench` model)
    except ImportError as err:
        raise UserError(f"lm-eval is not installed ({err})", fix='pip install -e ".[lmeval]"') from None
    saved = sys.argv
    sys.argv = ["lm_eval", *args.lm_eval_args]
    try:
        cli_evaluate()
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    finally:
        sys.argv = saved
    return 0


def add_lmeval_commands(sub: argparse._SubParsersAction) -> None:
    ex = sub.add_parser("export-lmeval", help="a finished run's instances as lm-evaluation-harness tasks")
    ex.add_argument("run_dir")
    ex.add_argument("--out", required=True, help="task folder for lm_eval --include_path (replaced)")
    ex.add_argument("--prefix", default="recx_", help="lm-eval task name prefix (default recx_)")
    ex.add_argument(
        "--plain",
        action="store_true",
        help="bare questions (for lm_eval --apply_chat_template) instead of the run's chat-formatted prompts",
    )
    ex.set_defaults(func=cmd_export_lmeval)
    im = sub.add_parser("import-lmeval", help="put lm-eval's --log_samples output on a run's board")
    im.add_argument("output", help="lm-eval --output_path directory (or one samples_*.jsonl file)")
    im.add_argument("--run", required=True, help="the run directory the tasks were exported from")
    im.add_argument("--name", required=True, help="the explainer label of the imported model")
    im.add_argument("--access", default="behavior", choices=["behavior", "embedding", "white-box"])
    im.set_defaults(func=cmd_import_lmeval)
    lm = sub.add_parser(
        "lm-eval", help="lm-eval's CLI with the `recxbench` model registered (arguments go to lm_eval)"
    )
    lm.add_argument("lm_eval_args", nargs=argparse.REMAINDER)
    lm.set_defaults(func=cmd_lm_eval)
