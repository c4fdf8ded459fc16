"""``recxbench export-lmeval RUN_DIR --out DIR``: a finished run's teacher instances as lm-eval tasks.

For each task of the run whose answers lm-eval can produce (classification, ranking, retrieval)::

    DIR/<task>.jsonl        the align-test instances, one lm-eval document each: the evaluation
                            prompt (``prompt``: exactly as the run's zero-shot LLM scored it, chat
                            format of the run's backbone included; ``question``: the bare question),
                            the answer choices, the instance itself
    DIR/<prefix><task>.yaml the lm-eval task (local JSON dataset, ``process_results`` from utils.py)
    DIR/<prefix>all.yaml    a group of them all
    DIR/utils.py            ``process_results`` and corpus aggregations: thin calls into
                            :class:`bench.lmeval.bundle.Bundle`, i.e. the tasks' own kernels
    DIR/recxbench.json      the run's fingerprint, task specs and catalog (checked on import)

Prompts are those of the run's ``zero-shot-llm`` explainer (its parameters when the suite lists
it, else the defaults on the suite's backbone), so an lm-eval row is comparable with the native rows.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import yaml

from bench import registry
from bench.errors import UserError
from bench.explainers.llm_text import answer_text
from bench.io import atomic_dir
from bench.lmeval.bundle import (
    BUNDLE_FILE,
    FORMAT_VERSION,
    corpus_metrics,
    metric_function,
    run_fingerprint,
    spec_json,
)
from bench.lmeval.convert import OUTPUT_TYPES
from bench.reload import reopen_run
from bench.state import RunState
from bench.tasks.base import Task
from bench.types import Instance

log = logging.getLogger(__name__)

PROMPT_EXPLAINER = "zero-shot-llm"
#: longest generated answer of a retrieval task (the LLM explainers' retrieval budget)
MAX_GEN_TOKS = 48

UTILS = '''"""lm-eval hooks of the tasks exported by `recxbench export-lmeval` (generated; no logic here).

Everything is recxbench's own code: bench.lmeval.bundle.Bundle rebuilds the run's tasks from
recxbench.json beside this file and scores lm-eval's outputs with the tasks' own kernels.
"""

from pathlib import Path

from bench.lmeval.bundle import Bundle

BUNDLE = Bundle.load(Path(__file__).resolve().parent)


def process_results(doc, results):
    return BUNDLE.process_results(doc, results)
'''


def _prompt_explainer(state: RunState) -> Any:
    """The run's zero-shot LLM, ready to write prompts (backbone loaded for its chat format)."""
    suite = state.suite
    cls = registry.explainers.get(PROMPT_EXPLAINER)
    specs = [e for e in suite.explainers if e.name == PROMPT_EXPLAINER]
    params = dict(specs[0].params) if specs else {}
    if suite.backbone:
        params.setdefault("backbone", suite.backbone)
    if "backbone" not in params:
        raise UserError(
            f"{state.out}: the suite names no backbone, so there are no evaluation prompts to export",
            fix="set `backbone:` in the suite (or list zero-shot-llm with a backbone) and rerun",
        )
    expl = cls(**params)
    assert state.dataset is not None and state.catalog is not None

    class _Ctx:  # what the prompt writer reads
        dataset = state.dataset
        catalog = state.catalog
        seed = state.seed
        device = "cpu"

    expl.ctx = _Ctx()  # type: ignore[assignment]
    expl.backbone = expl.load_backbone(expl.ctx)
    return expl


def _doc(expl: Any, task: Task, inst: Instance, run: str) -> dict[str, Any]:
    from bench.answers import Permutation, YesNo
    from bench.llm.chat import format_prompt

    shape = expl.shape(task)
    question = expl.question(shape, inst)
    prompt = format_prompt(expl.backbone, question)
    doc: dict[str, Any] = {
        "prompt": prompt,
        "question": question,
        "run": run,
        "task_sha256": task.spec.sha256,
        "instance": {
            "instance_id": inst.instance_id,
            "key": inst.key,
            "task": inst.task,
            "user": inst.user,
            "history": list(inst.history),
            "candidates": list(inst.candidates),
            "label": inst.label,
        },
    }
    answers = expl.prompts.answers
    if task.answer is YesNo:
        doc["choices"] = [answer_text(prompt, answers["yes"]), answer_text(prompt, answers["no"])]
        doc["choices_plain"] = [answers["yes"], answers["no"]]
        doc["gold"] = 0 if int(inst.label) == 1 else 1
    elif task.answer is Permutation:
        titles = expl.titles(inst.candidates)
        doc["titles"] = titles
        doc["separator"] = answers["separator"]
        doc["choices"] = [answer_text(prompt, t) for t in titles]
        doc["choices_plain"] = titles
        doc["gold"] = list(inst.candidates).index(int(inst.label[0]))
    else:
        doc["gold"] = expl.titles([inst.label[0]])[0]
    return doc


def _task_yaml(name: str, task: Task, data: Path, run: str, plain: bool) -> str:
    out_type = OUTPUT_TYPES[task.answer]
    cfg: dict[str, Any] = {
        "task": name,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(data.resolve())}},
        "test_split": "test",
        "output_type": out_type,
        "doc_to_text": "question" if plain else "prompt",
        "doc_to_target": "gold",
        "num_fewshot": 0,
        "metadata": {
            "version": FORMAT_VERSION,
            "recxbench_run": run,
            "recxbench_task_sha256": task.spec.sha256,
        },
    }
    if out_type == "multiple_choice":
        # the choices carry their own leading space (bench.explainers.llm_text.answer_text)
        cfg["doc_to_choice"] = "choices_plain" if plain else "choices"
        cfg["target_delimiter"] = " " if plain else ""
    else:
        cfg["generation_kwargs"] = {"until": ["\n\n"], "max_gen_toks": MAX_GEN_TOKS, "do_sample": False}
    text = yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True)
    corpus = set(corpus_metrics(task))
    lines = ["process_results: !function utils.process_results", "metric_list:"]
    for m in task.metrics():
        agg = f"!function utils.{metric_function(m.name)}" if m.name in corpus else "mean"
        lines += [
            f"  - metric: {json.dumps(m.name)}",
            f"    aggregation: {agg}",
            f"    higher_is_better: {str(m.higher_is_better).lower()}",
        ]
    return text + "\n".join(lines) + "\n"


def export_lmeval(run_dir: Path, out: Path, *, prefix: str = "recx_", plain: bool = False) -> list[str]:
    """Write the lm-eval task folder of ``run_dir`` into ``out`` (replaced atomically); returns the
    lm-eval task names (the last one is the group)."""
    state, _results, manifest = reopen_run(Path(run_dir))
    expl = _prompt_explainer(state)
    assert state.dataset is not None
    run = run_fingerprint(manifest)
    tasks = [t for t, task in state.tasks.items() if task.answer in OUTPUT_TYPES and expl.supports(task)]
    skipped = sorted(set(state.tasks) - set(tasks))
    if skipped:
        log.info("not exported (no lm-eval request type for their answers): %s", ", ".join(skipped))
    if not tasks:
        raise UserError(
            f"{run_dir}: no task lm-eval can answer",
            fix="run a suite with classification, ranking or retrieval",
        )
    out = Path(out).resolve()
    names = [f"{prefix}{t}" for t in tasks]
    corpus = sorted({m for t in tasks for m in corpus_metrics(state.tasks[t])})
    with atomic_dir(out, replace=True) as staging:
        for t, name in zip(tasks, names):
            task = state.tasks[t]
            docs = [_doc(expl, task, inst, run) for inst in state.instances[t]["align_test"]]
            (staging / f"{t}.jsonl").write_text(
                "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs), encoding="utf-8"
            )
            (staging / f"{name}.yaml").write_text(
                _task_yaml(name, task, out / f"{t}.jsonl", run, plain), encoding="utf-8"
            )
        group = f"{prefix}all"
        (staging / f"{group}.yaml").write_text(
            yaml.safe_dump({"group": group, "task": names}, sort_keys=False), encoding="utf-8"
        )
        utils = UTILS + "".join(
            f"\n\ndef {metric_function(m)}(items):\n    return BUNDLE.corpus({m!r}, items)\n" for m in corpus
        )
        (staging / "utils.py").write_text(utils, encoding="utf-8")
        bundle = {
            "format": FORMAT_VERSION,
            "run": run,
            "run_dir": str(Path(run_dir).resolve()),
            "backbone": expl.params["backbone"],
            "seed": state.seed,
            "prompt_template_sha256": expl.prompts.sha256,
            "separator": expl.prompts.answers["separator"],
            "tasks": {
                t: {
                    "spec": spec_json(state.tasks[t].spec),
                    "answer": state.tasks[t].answer.__name__,
                    "lmeval_task": n,
                }
                for t, n in zip(tasks, names)
            },
            "catalog": {
                "titles": list(state.dataset.titles),
                "genres": [list(g) for g in state.dataset.genres],
                "years": list(state.dataset.years),
            },
        }
        (staging / BUNDLE_FILE).write_text(json.dumps(bundle, indent=1) + "\n", encoding="utf-8")
    return [*names, group]
