"""Access levels are enforced: "cheating" plugin explainers, one per route, get no advantage.

Routes tried (each was open before the evidence review):

* the label in the instance id (ids used to end in ``/pos`` or ``/neg``);
* the order (instances used to arrive as like, dislike, like, dislike ...), also when the
  explainer recomputes the presentation shuffle from the seed;
* recognising ids as hashes of keys built from public raw user ids;
* ``f`` itself from a behavior explainer (``ctx.target`` was handed to everyone);
* the test users' histories from a behavior explainer (``ctx.split`` held them: the answer of
  history reconstruction), directly or by linking a user's instances across tasks;
* an embedding explainer reading vectors of histories it was never shown, or matching history
  reconstruction's user vector against vectors of histories other tasks show.

Each cheater records what it could reach; the tests check it reached nothing and scored at chance.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench import registry, seeds
from bench.access import blind, presentation_order
from bench.answers import ItemList, RankedItems, YesNo
from bench.cli import main
from bench.explainers.base import AccessDenied, Explainer, ExplainerContext
from bench.tasks.base import Task, opaque_id
from bench.types import Instance, Prediction

FAST = [
    "--set", "dataset.params.n_users=200",
    "--set", "target.params.epochs=8",
    "--set", "stats.resamples=500",
    "--set", "claims=[]",
    "--set", "task_params={}",
    "--set", "tasks=[next_item_retrieval,interest_classification,history_reconstruction]",
]  # fmt: skip

#: what each cheater managed to reach, filled in during the run (same process)
REACHED: dict[str, dict[str, Any]] = {}


def _try(fn: Any) -> Any:
    try:
        return fn()
    except (AccessDenied, AttributeError, KeyError, IndexError):
        return None


class _Cheater(Explainer):
    """Answers retrieval, classification and history reconstruction (not ranking)."""

    access = "behavior"

    def fit(self, train: Mapping[str, list[Instance]], ctx: ExplainerContext) -> None:
        self.ctx = ctx
        self.seen_histories: dict[int, tuple[int, ...]] = {}
        REACHED[self.name] = {"target": None, "labels_seen": 0, "keys_seen": 0}

    def _record(self, instances: list[Instance]) -> None:
        r = REACHED[self.name]
        r["labels_seen"] += sum(i.label is not None for i in instances)
        r["keys_seen"] += sum(bool(i.key) for i in instances)

    def classify(self, task: Task, instances: list[Instance]) -> list[YesNo]:
        self._record(instances)
        return [YesNo(bool(y), score=float(y)) for y in self.guess(instances)]

    def reconstruct(self, task: Task, instances: list[Instance]) -> list[ItemList]:
        self._record(instances)
        return [ItemList(self.history_of(i)) for i in instances]

    def retrieve(self, task: Task, instances: list[Instance]) -> list[RankedItems]:
        self._record(instances)
        for i in instances:  # remember what each user was shown (a cross-task link)
            self.seen_histories[i.user] = tuple(i.history)
        return [RankedItems([]) for _ in instances]

    def guess(self, instances: list[Instance]) -> list[int]:
        return [0] * len(instances)

    def history_of(self, inst: Instance) -> tuple[int, ...]:
        return ()


class LabelInId(_Cheater):
    """Reads the like/dislike from the id (or from a readable key, were one handed out), and tries to
    recognise the ids as hashes of keys it can build from public raw user ids."""

    name = "cheat-id"

    def guess(self, instances: list[Instance]) -> list[int]:
        keys = {
            opaque_id(f"{t}/align_test/{u}/0" + suffix)
            for t in self.ctx.tasks
            for u in self.ctx.dataset.user_ids
            for suffix in ("", "/p0/a", "/p0/b", "/a", "/b")
        }
        REACHED[self.name]["enumerated"] = sum(i.instance_id in keys for i in instances)
        return [
            int("pos" in i.instance_id or "pos" in i.key or i.instance_id.endswith("/a")) for i in instances
        ]


class UndoOrder(_Cheater):
    """Recomputes the presentation order from what it knows (the seed, the task, the count) and
    answers by the position each instance had before the shuffle (build order alternated likes and
    dislikes)."""

    name = "cheat-unshuffle"

    def answer(self, task: Task, instances: list[Instance]) -> list[Prediction]:
        self._task = task.name
        return super().answer(task, instances)

    def guess(self, instances: list[Instance]) -> list[int]:
        n = len(instances)
        guessed = presentation_order(str(self.ctx.seed), self._task, n)
        old = seeds.rng(self.ctx.seed, self._task, seeds.PRESENTATION).permutation(n)
        return [int(old[j] % 2 == 0) ^ int(guessed[j] % 2 == 1) for j in range(n)]


class LabelInOrder(_Cheater):
    """Answers like, dislike, like, dislike ... (the old presentation order)."""

    name = "cheat-order"

    def guess(self, instances: list[Instance]) -> list[int]:
        return [int(j % 2 == 0) for j in range(len(instances))]


class TargetFromBehavior(_Cheater):
    """A behavior explainer that looks for f everywhere it might be and uses it when found."""

    name = "cheat-target"

    def fit(self, train: Mapping[str, list[Instance]], ctx: ExplainerContext) -> None:
        super().fit(train, ctx)
        found = (
            _try(lambda: ctx.target)
            or getattr(ctx, "target_", None)
            or _try(lambda: ctx.embeddings)
            or getattr(ctx, "embeddings_", None)
            or next((v for v in ctx.extra.values() if hasattr(v, "scores")), None)
            or next(
                (
                    b.get("target")
                    for t in ctx.tasks.values()
                    if isinstance(b := getattr(t, "_bound", None), dict)
                ),
                None,
            )
        )
        REACHED[self.name]["target"] = found
        self.f = found

    def guess(self, instances: list[Instance]) -> list[int]:
        if self.f is None or not hasattr(self.f, "scores"):
            return super().guess(instances)
        scores = self.f.scores([list(i.history) for i in instances])
        out = []
        for i, row in zip(instances, scores):
            finite = row[np.isfinite(row)]
            out.append(int(row[i.candidates[0]] >= np.median(finite)))
        return out


class HistoryFromSplit(_Cheater):
    """Answers history reconstruction from the split, the dataset, or another task's instances."""

    name = "cheat-history"

    def history_of(self, inst: Instance) -> tuple[int, ...]:
        if inst.user in self.seen_histories:
            return self.seen_histories[inst.user]
        split = self.ctx.split
        row = np.searchsorted(split.users, inst.user)
        if inst.user >= 0 and row < len(split.users) and split.users[row] == inst.user:
            return tuple(int(x) for x in split.train[row][-5:])
        seqs = self.ctx.dataset.sequences()
        return tuple(int(x) for x in seqs[inst.user][-7:-2]) if 0 <= inst.user < len(seqs) else ()


class VectorMatcher(_Cheater):
    """Embedding access: matches history reconstruction's user vector against the vectors of
    histories shown elsewhere, and asks the view for histories it was never shown."""

    name = "cheat-vectors"
    access = "embedding"

    def fit(self, train: Mapping[str, list[Instance]], ctx: ExplainerContext) -> None:
        super().fit(train, ctx)
        REACHED[self.name]["unseen_vector"] = _try(lambda: ctx.embeddings.user_vector((0, 1, 2, 3, 4)))
        REACHED[self.name]["target"] = _try(lambda: ctx.target) or getattr(ctx, "target_", None)

    def history_of(self, inst: Instance) -> tuple[int, ...]:
        v = np.asarray(inst.meta["user_vector"], dtype=np.float32)
        for h in list(self.seen_histories.values()):
            w = _try(lambda h=h: self.ctx.embeddings.user_vector(h))
            if w is not None and np.allclose(w, v, atol=1e-5):
                return h
        return ()


CHEATERS = (LabelInId, LabelInOrder, UndoOrder, TargetFromBehavior, HistoryFromSplit, VectorMatcher)
for _cls in CHEATERS:
    registry.explainers.register(_cls.name, _cls)


@pytest.fixture(scope="module")
def cheat_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("runs") / "cheat"
    names = ",".join(["random", "popularity", *(c.name for c in CHEATERS)])
    assert main(["-q", "run", "tiny", "--out", str(out), *FAST, "--set", f"explainers=[{names}]"]) == 0
    results = json.loads((out / "results.json").read_text())
    return {(r["explainer"], r["task"], r["metric"]): r for r in results["results"]}


def test_no_label_or_key_reaches_any_explainer(cheat_run: dict) -> None:
    for cls in CHEATERS:
        assert REACHED[cls.name]["labels_seen"] == 0
        assert REACHED[cls.name]["keys_seen"] == 0


def test_label_in_id_gives_chance(cheat_run: dict) -> None:
    # every answer is "dislike": exactly half the balanced instances are right
    assert cheat_run[("cheat-id", "interest_classification", "accuracy")]["value"] == pytest.approx(0.5)
    assert REACHED["cheat-id"]["enumerated"] == 0  # shown ids are salted aliases, not key hashes


def test_recomputed_presentation_order_gives_chance(cheat_run: dict) -> None:
    r = cheat_run[("cheat-unshuffle", "interest_classification", "accuracy")]
    assert abs(r["value"] - 0.5) < 0.12 and r["ci_low"] < 0.5 < r["ci_high"]


def test_order_gives_chance(cheat_run: dict) -> None:
    r = cheat_run[("cheat-order", "interest_classification", "accuracy")]
    assert r["n"] >= 100
    assert abs(r["value"] - 0.5) < 0.12  # was 1.0 when likes and dislikes alternated
    assert r["ci_low"] < 0.5 < r["ci_high"]


def test_behavior_explainer_never_reaches_f(cheat_run: dict) -> None:
    assert REACHED["cheat-target"]["target"] is None
    assert cheat_run[("cheat-target", "interest_classification", "accuracy")]["value"] == pytest.approx(0.5)


def test_test_users_histories_are_hidden(cheat_run: dict) -> None:
    assert cheat_run[("cheat-history", "history_reconstruction", "hcr")]["value"] == 0.0
    pop = cheat_run[("popularity", "history_reconstruction", "hcr")]["value"]
    assert pop < 0.5  # the floor recovers little without the users' own data


def test_embedding_access_is_vectors_of_shown_histories_only(cheat_run: dict) -> None:
    assert REACHED["cheat-vectors"]["unseen_vector"] is None
    assert REACHED["cheat-vectors"]["target"] is None
    assert cheat_run[("cheat-vectors", "history_reconstruction", "hcr")]["value"] == 0.0


def test_context_fields_by_access_level() -> None:
    ctx = ExplainerContext(access="behavior", dataset=None, split=None, catalog=None, tasks={})  # type: ignore[arg-type]
    with pytest.raises(AccessDenied, match="white-box"):
        _ = ctx.target
    with pytest.raises(AccessDenied, match="embedding"):
        _ = ctx.embeddings

    class _Task:
        hides_history = True

        def public_meta_keys(self) -> frozenset[str]:
            return frozenset({"user_vector"})

    inst = Instance("abc", "t", 7, (1, 2), 1, (3,), {"user_vector": [0.1], "prefix_len": 9}, key="t/x/u7/0/a")
    b = blind(inst, _Task(), "behavior")  # type: ignore[arg-type]
    assert (b.label, b.key, b.user, b.history, b.meta) == (None, "", -1, (), {})
    e = blind(inst, _Task(), "embedding")  # type: ignore[arg-type]
    assert e.meta == {"user_vector": [0.1]} and e.user == -1
    w = blind(inst, _Task(), "white-box")  # type: ignore[arg-type]
    assert w.meta == {"user_vector": [0.1], "prefix_len": 9} and w.user == 7


def test_readme_documents_access_levels() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Adding an explainer", 1)[1].split("\n## ", 1)[0]
    for level in ("behavior", "embedding", "white-box"):
        assert f"`{level}`" in section


class _StrictTarget(Explainer):
    """Reads ``ctx.target`` without declaring white-box access (a plugin author's mistake)."""

    name = "strict-target"
    access = "behavior"

    def fit(self, train: Mapping[str, list[Instance]], ctx: ExplainerContext) -> None:
        self.f = ctx.target

    def classify(self, task: Task, instances: list[Instance]) -> list[YesNo]:
        return []


registry.explainers.register(_StrictTarget.name, _StrictTarget)


def test_undeclared_access_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "strict"
    code = main(["-q", "run", "tiny", "--out", str(out), *FAST, "--set", "explainers=[strict-target]"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and not (out / "results.json").exists()
    assert len(err) == 1 and "declare access = 'white-box'" in err[0] and "Traceback" not in err[0]
