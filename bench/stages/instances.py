"""Stage ``instances``: the user split and every task's teacher instances, per user part."""

from __future__ import annotations

import logging

import numpy as np

from bench import seeds
from bench.errors import UserError
from bench.hashing import stable_hash
from bench.io import fault_point, read_jsonl, write_jsonl
from bench.state import PARTS, RunState, stage_timer
from bench.tasks.base import BuildInput, check_unseen
from bench.types import Instance

log = logging.getLogger(__name__)

#: bumped whenever how instances are built changes (2: whole-prefix masking, opaque ids, id order)
INSTANCES_PROTOCOL = 2


def split_users(state: RunState) -> dict[str, np.ndarray]:
    """Disjoint align-train / align-valid / align-test user rows, fixed by the seed.

    One permutation of the split's users (stream ``seeds.USER_SPLIT``) is cut by the shares,
    rounded; align-test takes what is left if rounding overshoots; the optional caps truncate.
    """
    assert state.split is not None
    users = state.suite.users
    n = len(state.split.users)
    perm = state.rng(seeds.USER_SPLIT).permutation(n)
    n_train = int(round(n * users.align_train))
    n_valid = int(round(n * users.align_valid))
    n_test = min(int(round(n * users.align_test)), n - n_train - n_valid)
    parts = {
        "align_train": perm[:n_train],
        "align_valid": perm[n_train : n_train + n_valid],
        "align_test": perm[n_train + n_valid : n_train + n_valid + n_test],
    }
    for part in PARTS:
        cap = users.cap(part)
        if cap is not None:
            parts[part] = parts[part][:cap]
    return {k: np.sort(v) for k, v in parts.items()}


def stage_instances(state: RunState) -> None:
    assert state.split is not None and state.target is not None
    with stage_timer(state, "instances"):
        state.user_parts = split_users(state)
        per_user = state.suite.users.train_contexts_per_user
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
                        "seed": state.seed,
                        "per_user": per_user,
                    }
                )[:16]
                path = state.cache / "instances" / f"{name}-{part}-{key}.jsonl"
                if path.exists():
                    state.instances[name][part] = [Instance.from_json(d) for d in read_jsonl(path)]
                    state.record(f"instances:{name}/{part}", "reused")
                    continue
                inp = BuildInput(
                    split=state.split,
                    target=state.target,
                    rows=rows,
                    part=part,
                    rng=state.rng(name, p_idx),
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
                fault_point("instances:part")
                state.instances[name][part] = insts
                state.record(f"instances:{name}/{part}", "built")
            sizes = {p: len(v) for p, v in state.instances[name].items()}
            log.info("task %s: %s instances", name, sizes)
            if not sizes["align_test"]:  # nothing to score: every statistic would be empty
                raise UserError(
                    f"task {name!r} has no align-test instances ({len(state.user_parts['align_test'])} "
                    "align-test users, none with a usable history)",
                    where=f"{state.suite.path}:users",
                    fix="raise users.align_test (or max_test), relax the task's filters, or use a larger dataset",
                )
