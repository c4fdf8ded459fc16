"""Stage ``explain``: fit every explainer on align-train and collect its align-test answers.

Explainers receive what their access level allows (:mod:`bench.access`): unlabelled instances with
salted aliases, in an order drawn from f's checkpoint hash; tasks that hide the history are
answered first. Predictions are cached per explainer, keyed by everything that produced them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import replace

from bench.access import ContextFactory, alias, blind, presentation_order
from bench.data.catalog import Catalog
from bench.explainers.base import Explainer
from bench.hashing import stable_hash
from bench.io import fault_point, read_json, read_jsonl, write_json, write_jsonl
from bench.state import RunState, stage_timer
from bench.types import Instance, Prediction

log = logging.getLogger(__name__)

#: bumped whenever what explainers receive or how they answer changes (2: access levels enforced,
#: aliased ids in a secret order, likelihood-constrained ranking)
PREDICTIONS_PROTOCOL = 2


def _check_predictions(label: str, task: str, insts: list[Instance], preds: list[Prediction]) -> None:
    if len(preds) != len(insts) or any(p.instance_id != i.instance_id for p, i in zip(preds, insts)):
        raise RuntimeError(
            f"explainer {label!r} returned {len(preds)} predictions for {len(insts)} {task} instances, or out of order"
        )


def stage_explainers(state: RunState, explainers: Mapping[str, Explainer], *, progress: bool = True) -> None:
    from tqdm.auto import tqdm

    assert state.dataset is not None and state.split is not None and state.target is not None
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
        seed=state.seed,
    )
    train = {t: parts["align_train"] for t, parts in state.instances.items()}
    valid = {t: parts["align_valid"] for t, parts in state.instances.items()}
    for label, explainer in tqdm(
        list(explainers.items()), desc="explainers", disable=not progress, unit="expl"
    ):
        spec = state.suite.explainer(label)
        with stage_timer(state, f"explainer:{label}"):
            key = stable_hash(
                {
                    "name": spec.name,
                    "params": explainer.params,
                    "code_version": explainer.version,
                    "protocol": PREDICTIONS_PROTOCOL,
                    "target": state.target_key,
                    "tasks": {t: s.spec.sha256 for t, s in state.tasks.items()},
                    "users": {p: r.tolist() for p, r in state.user_parts.items()},
                    "seed": state.seed,
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
                state.record(f"explainer:{label}", "reused")
                continue
            ctx = contexts.context(
                explainer.access,
                cache_dir=directory / "work",
                extra={
                    "valid": valid,
                    "adapters_dir": state.cache / "adapters",
                    "backbones": state.backbones,
                },
            )
            t0 = time.perf_counter()
            fault_point("explain:fit")
            explainer.fit({t: train[t] for t in supported}, ctx)
            fault_point("explain:fitted")
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
                fault_point("explain:task")  # some tasks answered, done.json not yet written
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
            fault_point("explain:done")
            state.record(f"explainer:{label}", "built")
