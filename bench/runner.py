"""The one-way flow, stage by stage, with an on-disk cache keyed by what produced each stage.

suite -> dataset -> split -> target f -> teacher instances -> explainers -> scores -> stats -> report

Each stage's output lives under ``RUN_DIR/cache/<stage>/<key>``; the key is a hash of every input
of the stage, so a rerun skips finished stages and a crashed run resumes. ``results.json`` is
written last and atomically: a run directory without it is not a finished run.
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from bench import registry
from bench.access import ContextFactory, alias, blind, presentation_order
from bench.config import SuiteConfig
from bench.data.catalog import Catalog
from bench.data.dataset import Dataset, Split, leave_one_out
from bench.data.resolve import resolve_dataset
from bench.device import resolve_device
from bench.errors import UserError
from bench.explainers.base import Explainer
from bench.hashing import stable_hash
from bench.io import read_json, read_jsonl, write_json, write_jsonl
from bench.recommenders.base import TargetRecommender
from bench.tasks.base import BuildInput, Task, check_unseen
from bench.types import Instance, Prediction

log = logging.getLogger(__name__)
PARTS = ("align_train", "align_valid", "align_test")
#: bumped whenever how instances are built changes (2: whole-prefix masking, opaque ids, id order)
INSTANCES_PROTOCOL = 2
#: bumped whenever what explainers receive or how they answer changes (2: access levels enforced,
#: aliased ids in a secret order, likelihood-constrained ranking)
PREDICTIONS_PROTOCOL = 2


@dataclass(frozen=True)
class RunOptions:
    out: Path
    device: str = "auto"
    progress: bool = True


@dataclass
class RunState:
    """What the stages produced, handed to scoring and the report."""

    suite: SuiteConfig
    out: Path
    device: str
    dataset: Dataset | None = None
    split: Split | None = None
    catalog: Catalog | None = None
    target: TargetRecommender | None = None
    target_key: str = ""
    target_card: dict[str, Any] = field(default_factory=dict)
    tasks: dict[str, Task] = field(default_factory=dict)
    instances: dict[str, dict[str, list[Instance]]] = field(default_factory=dict)  # task -> part -> list
    user_parts: dict[str, np.ndarray] = field(default_factory=dict)
    predictions: dict[str, dict[str, list[Prediction]]] = field(
        default_factory=dict
    )  # label -> task -> preds
    explainer_info: dict[str, dict[str, Any]] = field(default_factory=dict)
    stage_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def cache(self) -> Path:
        return self.out / "cache"


class _Stage:
    def __init__(self, state: RunState, name: str) -> None:
        self.state, self.name = state, name

    def __enter__(self) -> _Stage:
        self.t0 = time.perf_counter()
        log.info("stage %s ...", self.name)
        return self

    def __exit__(self, *exc: object) -> None:
        dt = time.perf_counter() - self.t0
        self.state.stage_seconds[self.name] = round(self.state.stage_seconds.get(self.name, 0.0) + dt, 3)
        if exc[0] is None:
            log.info("stage %s done in %.1f s", self.name, dt)


def instantiate_tasks(suite: SuiteConfig) -> dict[str, Task]:
    tasks: dict[str, Task] = {}
    for spec in suite.tasks:
        if spec.name in tasks:
            raise UserError(
                f"task {spec.name!r} is listed twice", where=suite.path, fix="list each task once"
            )
        cls = registry.task_kinds.get(spec.kind)
        tasks[spec.name] = cls(spec)
    return tasks


def instantiate_explainers(suite: SuiteConfig) -> dict[str, Explainer]:
    out: dict[str, Explainer] = {}
    backbone = suite.raw.get("backbone")
    for spec in suite.explainers:
        cls = registry.explainers.get(spec.name)
        params = dict(spec.params)
        if backbone and cls.uses_backbone:
            params.setdefault("backbone", backbone)
        try:
            out[spec.label] = cls(**params)
        except TypeError as err:
            raise UserError(
                f"bad parameters for explainer {spec.name!r}: {err}",
                where=f"{suite.path}:explainers",
                fix="see `recxbench list explainers` for the accepted parameters",
            ) from None
    return out


# -- stages -------------------------------------------------------------------------------------


def stage_data(state: RunState) -> None:
    with _Stage(state, "data"):
        ds_cfg = state.suite.raw["dataset"]
        state.dataset = resolve_dataset(ds_cfg)
        state.split = leave_one_out(state.dataset, min_interactions=int(ds_cfg["min_interactions"]))
        state.catalog = Catalog.from_dataset(state.dataset)
        if len(state.split.users) < 10:
            raise UserError(
                f"only {len(state.split.users)} users have >= {ds_cfg['min_interactions']} interactions",
                where="dataset",
                fix="use a larger dataset or lower dataset.min_interactions",
            )
        log.info(
            "dataset %s: %d users, %d items, %d interactions (%d users kept)",
            state.dataset.name,
            state.dataset.n_users,
            state.dataset.n_items,
            state.dataset.n_interactions,
            len(state.split.users),
        )


def stage_target(state: RunState) -> None:
    from bench.recommenders.evaluation import target_card
    from bench.recommenders.io import checkpoint_hash, load_target
    from bench.recommenders.popularity import Popularity

    assert state.dataset is not None and state.split is not None
    with _Stage(state, "target"):
        cfg = state.suite.raw["target"]
        seed = int(state.suite.raw["seed"])
        key = stable_hash(
            {
                "dataset": state.dataset.sha256,
                "min_interactions": state.split.min_interactions,
                "target": cfg["name"],
                "params": cfg["params"],
                "seed": seed,
                "device": state.device,
            }
        )[:16]
        state.target_key = key
        directory = state.cache / "target" / f"{cfg['name']}-{key}"
        card_path = directory / "card.json"
        if card_path.exists():
            log.info("target %s: reusing %s", cfg["name"], directory)
            state.target = load_target(directory)
            state.target_card = read_json(card_path)
            return
        cls = registry.recommenders.get(cfg["name"])
        try:
            model = cls(state.dataset.n_items, **cfg["params"])
        except TypeError as err:
            raise UserError(
                f"bad target parameter: {err}", where="target.params", fix="see the target's defaults"
            ) from None
        report = model.fit(state.split, seed=seed, device=state.device)
        directory.mkdir(parents=True, exist_ok=True)
        model.save(directory)
        pop = Popularity(state.dataset.n_items)
        pop.fit(state.split, seed=seed)
        card = {
            "name": cfg["name"],
            "config": model.config(),
            **target_card(model, state.split),
            "baselines": {"popularity": target_card(pop, state.split)},
            "train_seconds": round(report.seconds, 2),
            "epochs": report.epochs,
            "best_epoch": report.best_epoch,
            "checkpoint_sha256": checkpoint_hash(directory),
        }
        write_json(card_path, card)  # written last: its presence marks the stage as finished
        state.target = model
        state.target_card = card


def teacher_views(state: RunState) -> dict[str, dict[str, float]]:
    """The target card's teacher-view rows: test accuracy of ``f`` reading only the window each
    task shows (its ``history_len``), with the whole prior history excluded — the labels' rule."""
    from bench.recommenders.evaluation import teacher_view

    assert state.target is not None and state.split is not None
    windows = sorted(
        {int(t.params["history_len"]) for t in state.tasks.values() if "history_len" in t.params}
    )
    return {str(w): teacher_view(state.target, state.split, window=w) for w in windows}


def split_users(state: RunState) -> dict[str, np.ndarray]:
    """Disjoint align-train / align-valid / align-test user rows, fixed by the seed."""
    assert state.split is not None
    u = state.suite.raw["users"]
    n = len(state.split.users)
    rng = np.random.default_rng(np.random.SeedSequence([int(state.suite.raw["seed"]), 7_000_001]))
    perm = rng.permutation(n)
    n_train, n_valid = int(round(n * u["align_train"])), int(round(n * u["align_valid"]))
    n_test = min(int(round(n * u["align_test"])), n - n_train - n_valid)
    parts = {
        "align_train": perm[:n_train],
        "align_valid": perm[n_train : n_train + n_valid],
        "align_test": perm[n_train + n_valid : n_train + n_valid + n_test],
    }
    for part, cap in (("align_train", "max_train"), ("align_valid", "max_valid"), ("align_test", "max_test")):
        if u[cap] is not None:
            parts[part] = parts[part][: int(u[cap])]
    return {k: np.sort(v) for k, v in parts.items()}


def stage_instances(state: RunState) -> None:
    assert state.split is not None and state.target is not None
    with _Stage(state, "instances"):
        state.user_parts = split_users(state)
        seed = int(state.suite.raw["seed"])
        per_user = int(state.suite.raw["users"]["train_contexts_per_user"])
        for name, task in state.tasks.items():
            state.instances[name] = {}
            for p_idx, part in enumerate(PARTS):
                rows = state.user_parts[part]
                key = stable_hash(
                    {
                        "protocol": INSTANCES_PROTOCOL,
                        "target": state.target_key,
                        "task": task.spec.sha256,
                        "rows": rows.tolist(),
                        "seed": seed,
                        "per_user": per_user,
                    }
                )[:16]
                path = state.cache / "instances" / f"{name}-{part}-{key}.jsonl"
                if path.exists():
                    state.instances[name][part] = [Instance.from_json(d) for d in read_jsonl(path)]
                    continue
                rng = np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(name.encode()), p_idx]))
                inp = BuildInput(
                    split=state.split,
                    target=state.target,
                    rows=rows,
                    part=part,
                    rng=rng,
                    contexts_per_user=per_user,
                )
                # stored (and so handed out) in the order of their opaque ids: never in build order,
                # which pairs a like with a dislike
                insts = sorted(task.build(inp), key=lambda i: i.instance_id)
                leaks = check_unseen(task, state.split, insts)
                if leaks:  # a task implementation broke the masking rule: never publish its labels
                    raise RuntimeError(
                        f"task {name!r} built {leaks} {part} instances whose teacher item the user had "
                        "already interacted with; labels must come from teacher_scores()"
                    )
                write_jsonl(path, [i.to_json() for i in insts])
                state.instances[name][part] = insts
            sizes = {p: len(v) for p, v in state.instances[name].items()}
            log.info("task %s: %s instances", name, sizes)


def _check_predictions(label: str, task: str, insts: list[Instance], preds: list[Prediction]) -> None:
    if len(preds) != len(insts) or any(p.instance_id != i.instance_id for p, i in zip(preds, insts)):
        raise RuntimeError(
            f"explainer {label!r} returned {len(preds)} predictions for {len(insts)} {task} instances, or out of order"
        )


def stage_explainers(state: RunState, explainers: Mapping[str, Explainer], *, progress: bool = True) -> None:
    from tqdm.auto import tqdm

    assert state.dataset is not None and state.split is not None and state.target is not None
    seed = int(state.suite.raw["seed"])
    # what orders and aliases the instances handed out: f's checkpoint hash, which only white-box
    # explainers could compute (stable across reruns of the same target, so runs stay comparable)
    secret = str(state.target_card.get("checkpoint_sha256") or state.target_key)
    contexts = ContextFactory(
        dataset=state.dataset,
        split=state.split,
        catalog=state.catalog or Catalog.from_dataset(state.dataset),
        target=state.target,
        tasks=state.tasks,
        instances=state.instances,
        scored_users=state.split.users[state.user_parts["align_test"]],
        device=state.device,
        seed=seed,
    )
    train = {t: parts["align_train"] for t, parts in state.instances.items()}
    valid = {t: parts["align_valid"] for t, parts in state.instances.items()}
    for label, explainer in tqdm(
        list(explainers.items()), desc="explainers", disable=not progress, unit="expl"
    ):
        spec = next(e for e in state.suite.explainers if e.label == label)
        with _Stage(state, f"explainer:{label}"):
            key = stable_hash(
                {
                    "name": spec.name,
                    "params": getattr(explainer, "params", spec.params),
                    "code_version": getattr(explainer, "version", 1),
                    "protocol": PREDICTIONS_PROTOCOL,
                    "target": state.target_key,
                    "tasks": {t: s.spec.sha256 for t, s in state.tasks.items()},
                    "users": {p: r.tolist() for p, r in state.user_parts.items()},
                    "seed": seed,
                }
            )[:16]
            directory = state.cache / "predictions" / f"{label}-{key}"
            done = directory / "done.json"
            supported = [t for t, task in state.tasks.items() if explainer.supports(task)]
            if done.exists():
                state.explainer_info[label] = read_json(done)["info"]
                state.predictions[label] = {
                    t: [Prediction(**d) for d in read_jsonl(directory / f"{t}.jsonl")] for t in supported
                }
                log.info("explainer %s: reusing cached predictions", label)
                continue
            ctx = contexts.context(
                explainer.access,
                cache_dir=directory / "work",
                extra={"valid": valid, "adapters_dir": state.cache / "adapters"},
            )
            t0 = time.perf_counter()
            explainer.fit({t: train[t] for t in supported}, ctx)
            fit_s = time.perf_counter() - t0
            state.predictions[label] = {}
            # tasks that hide the history first: nothing shown before them can be matched to them
            hides = [t for t in supported if state.tasks[t].hides_history]
            for t in hides + [t for t in supported if t not in hides]:
                task = state.tasks[t]
                insts = state.instances[t]["align_test"]
                order = presentation_order(secret, t, len(insts))
                shown = [
                    blind(insts[int(j)], task, explainer.access, alias(secret, insts[int(j)].instance_id))
                    for j in order
                ]
                if ctx.embeddings_ is not None and t not in hides:
                    ctx.embeddings_.grant(i.history for i in shown)
                t1 = time.perf_counter()
                answers = explainer.answer(task, shown)
                _check_predictions(label, t, shown, answers)
                preds: list[Prediction] = [answers[0]] * len(insts) if insts else []
                for j, p in zip(order, answers, strict=True):
                    preds[int(j)] = replace(p, instance_id=insts[int(j)].instance_id)
                log.info(
                    "explainer %s: %s predicted %d instances in %.1f s",
                    label,
                    t,
                    len(insts),
                    time.perf_counter() - t1,
                )
                write_jsonl(directory / f"{t}.jsonl", [p.to_json() for p in preds])
                state.predictions[label][t] = preds
            info = {
                **explainer.info(),
                "name": spec.name,
                "access": explainer.access,
                "summary": explainer.summary,
                "fit_seconds": round(fit_s, 3),
            }
            state.explainer_info[label] = info
            write_json(done, {"info": info})


def run_suite(suite: SuiteConfig, opts: RunOptions) -> dict[str, Any]:
    """Run every stage and write the run directory; returns ``results.json``'s content."""
    from bench.evaluate import finish_run

    t0 = time.perf_counter()
    state = RunState(suite=suite, out=Path(opts.out), device=resolve_device(opts.device))
    state.tasks = instantiate_tasks(suite)
    explainers = instantiate_explainers(suite)
    # a previous results.json would look complete while this run is in progress
    (state.out / "results.json").unlink(missing_ok=True)
    state.out.mkdir(parents=True, exist_ok=True)
    stage_data(state)
    stage_target(state)
    state.target_card = {**state.target_card, "teacher_view": teacher_views(state)}
    stage_instances(state)
    stage_explainers(state, explainers, progress=opts.progress)
    return finish_run(state, started=t0)
