"""The suite as nested frozen dataclasses: every key, its default, its type and its check.

``SUITE_DEFAULTS`` lists every key with its default and a comment (the YAML a user writes is
merged onto it by :mod:`bench.config.load`); :func:`build_suite` turns the merged mapping into a
:class:`SuiteConfig` once, so no other module reads the suite by string keys.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bench.device import DEVICES
from bench.errors import ConfigError

# Every suite key with its default. A ``None`` default whose key is in FREE_FORM takes any mapping.
SUITE_DEFAULTS: dict[str, Any] = {
    "suite": None,  # the suite's name (defaults to the file name)
    "description": "",  # one paragraph shown on the leaderboard
    "seed": 0,  # fixes the user split, candidate sampling, training and bootstrap draws
    "device": "auto",  # auto | cpu | cuda (auto = CUDA when present)
    "backbone": None,  # default LLM backbone of every LLM explainer that does not name one (e.g. smollm2-135m)
    "dataset": {
        "name": "ml-100k",  # built-in dataset (ml-100k, tiny, opaque) or a label for `path`
        "path": None,  # a directory with RecBole atomic files or raw ML-100k/ML-1M files
        "format": "auto",  # auto, or a registered file format (atomic, ml-100k, ml-1m, plugins)
        "min_interactions": 3,  # users with fewer interactions are dropped before the split
        "params": {},  # generator parameters for generated datasets (tiny, opaque)
        "recipe": {  # preprocessing after loading, before the split (bench.data.recipes; `recxbench list recipes`)
            "name": "none",  # none | recexplainer | lane (or a plugin's)
            "params": {},  # the recipe's parameters, e.g. {core: 5, max_items: 2000, max_users: 4000} or {k: 20}
        },
    },
    "target": {
        "name": "sasrec",  # target recommender: sasrec | mf | popularity
        "params": {},  # hyper-parameters overriding the target's defaults
    },
    "users": {
        "align_train": 0.6,  # share of users whose instances train the explainers
        "align_valid": 0.1,  # share used for explainer model selection
        "align_test": 0.3,  # share scored on the board (disjoint from the two above)
        "max_train": None,  # optional caps on the number of users per part (CPU budgets)
        "max_valid": None,
        "max_test": None,
        "train_contexts_per_user": 1,  # extra earlier prefixes per align-train user (more training data)
    },
    "tasks": [],  # task names (tasks/<name>.yaml) or paths to task YAML files
    "task_dirs": [],  # extra directories searched for task YAML, relative to the suite file
    "task_params": {},  # per-task parameter overrides: {task: {param: value}}
    "explainers": [],  # names, or {name: ..., params: {...}, label: ...}
    "stats": {
        "confidence": 0.95,  # bootstrap CI level
        "resamples": 10000,  # bootstrap and randomization resamples
        "test": "auto",  # auto (McNemar for 0/1 metrics, else paired randomization) | randomization | bootstrap | wilcoxon
        "correction": "holm",  # holm | bh | none, over each (task, metric) family of pairwise comparisons
        "alpha": 0.05,  # significance level
        "unit": "auto",  # what CIs and tests resample: auto (users when a task has several instances per user, else instances) | user | instance
    },
    "claims": [],  # "A > B on task/metric" statements that get a verdict
    "tolerances": {},  # {"task/metric": absolute drop tolerated by `recxbench compare`}
}
FREE_FORM = {"dataset.params", "dataset.recipe.params", "target.params", "task_params", "tolerances"}


@dataclass(frozen=True)
class TaskSpec:
    """A task as declared in YAML (resolved: defaults filled in, overrides applied)."""

    name: str
    kind: str
    version: int
    description: str
    params: Mapping[str, Any]
    main_metric: str
    path: str = ""
    sha256: str = ""


@dataclass(frozen=True)
class ExplainerSpec:
    """One ``explainers:`` entry: the registry name, the board label and the constructor params."""

    name: str
    label: str
    params: Mapping[str, Any]


@dataclass(frozen=True)
class RecipeConfig:
    """``dataset.recipe:`` — a registered preprocessing recipe (``registry.recipes``) and its parameters."""

    name: str
    params: Mapping[str, Any]


@dataclass(frozen=True)
class DatasetConfig:
    """``dataset:`` — a registered dataset ``name`` (``tiny``, ``ml-100k``, ...) or, with ``path``, the
    user's directory read with ``format``; ``params`` go to a generated dataset; ``recipe`` preprocesses
    it; users with fewer than ``min_interactions`` interactions are dropped before the split."""

    name: str
    path: str | None
    format: str
    min_interactions: int
    params: Mapping[str, Any]
    recipe: RecipeConfig = RecipeConfig(name="none", params={})


@dataclass(frozen=True)
class TargetConfig:
    """``target:`` — the target recommender f (``registry.recommenders`` name) and its hyper-parameters."""

    name: str
    params: Mapping[str, Any]


@dataclass(frozen=True)
class UsersConfig:
    """``users:`` — shares of the split's users in each disjoint part, optional caps on each part,
    and how many contexts (the latest and earlier prefixes) each align-train user contributes."""

    align_train: float
    align_valid: float
    align_test: float
    max_train: int | None
    max_valid: int | None
    max_test: int | None
    train_contexts_per_user: int

    def cap(self, part: str) -> int | None:
        """The optional cap on the number of users of ``part``."""
        return {"align_train": self.max_train, "align_valid": self.max_valid, "align_test": self.max_test}[
            part
        ]


@dataclass(frozen=True)
class StatsConfig:
    """``stats:`` — CI level, resamples, the paired test, the multiple-comparison correction over each
    (task, metric) family, the significance level and what is resampled (users or instances)."""

    confidence: float
    resamples: int
    test: str
    correction: str
    alpha: float
    unit: str


@dataclass(frozen=True)
class SuiteConfig:
    """A resolved suite: defaults filled, overrides applied, values checked, tasks loaded."""

    name: str
    path: str
    description: str
    seed: int
    device: str
    backbone: str | None
    dataset: DatasetConfig
    target: TargetConfig
    users: UsersConfig
    stats: StatsConfig
    tasks: tuple[TaskSpec, ...]
    explainers: tuple[ExplainerSpec, ...]
    claims: tuple[str, ...]
    tolerances: Mapping[str, float]
    #: sha256 of the merged suite (every key, defaults included)
    sha256: str
    #: claims of the suite file whose explainers or task a ``--set`` override removed from this run
    skipped_claims: tuple[str, ...] = ()
    _document: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def as_dict(self) -> dict[str, Any]:
        """The merged suite mapping (a copy), as hashed and recorded in the manifest."""
        return copy.deepcopy(dict(self._document))

    def explainer(self, label: str) -> ExplainerSpec:
        """The entry of the explainer shown as ``label`` (``KeyError`` if the suite has none)."""
        for e in self.explainers:
            if e.label == label:
                return e
        raise KeyError(label)


def build_suite(
    raw: Mapping[str, Any],
    *,
    path: str,
    tasks: tuple[TaskSpec, ...],
    explainers: tuple[ExplainerSpec, ...],
    sha256: str,
    skipped_claims: tuple[str, ...] = (),
) -> SuiteConfig:
    """The typed suite of a merged, validated mapping (see :func:`validate_values`)."""
    ds, tg, us, st = raw["dataset"], raw["target"], raw["users"], raw["stats"]

    def opt_int(v: Any) -> int | None:
        return None if v is None else int(v)

    return SuiteConfig(
        name=str(raw["suite"]),
        path=path,
        description=str(raw["description"] or ""),
        seed=int(raw["seed"]),
        device=str(raw["device"]),
        backbone=None if raw["backbone"] is None else str(raw["backbone"]),
        dataset=DatasetConfig(
            name=str(ds["name"]),
            path=None if ds["path"] is None else str(ds["path"]),
            format=str(ds["format"]),
            min_interactions=int(ds["min_interactions"]),
            params=dict(ds["params"] or {}),
            recipe=RecipeConfig(name=str(ds["recipe"]["name"]), params=dict(ds["recipe"]["params"] or {})),
        ),
        target=TargetConfig(name=str(tg["name"]), params=dict(tg["params"] or {})),
        users=UsersConfig(
            align_train=float(us["align_train"]),
            align_valid=float(us["align_valid"]),
            align_test=float(us["align_test"]),
            max_train=opt_int(us["max_train"]),
            max_valid=opt_int(us["max_valid"]),
            max_test=opt_int(us["max_test"]),
            train_contexts_per_user=int(us["train_contexts_per_user"]),
        ),
        stats=StatsConfig(
            confidence=float(st["confidence"]),
            resamples=int(st["resamples"]),
            test=str(st["test"]),
            correction=str(st["correction"]),
            alpha=float(st["alpha"]),
            unit=str(st["unit"]),
        ),
        tasks=tasks,
        explainers=explainers,
        claims=tuple(str(c) for c in raw["claims"] or ()),
        tolerances={str(k): float(v) for k, v in (raw["tolerances"] or {}).items()},
        sha256=sha256,
        skipped_claims=skipped_claims,
        _document=copy.deepcopy(dict(raw)),
    )


def validate_values(raw: dict[str, Any], where: str) -> None:
    """Check the values of a merged suite mapping (types, ranges, known names); each error names
    ``file:key`` and a fix. Dataset names and formats are the data layer's registry
    (:func:`bench.data.resolve.check_dataset`)."""

    def bad(key: str, what: str, fix: str) -> ConfigError:
        return ConfigError(what, where=f"{where}:{key}", fix=fix)

    if raw["device"] not in DEVICES:
        raise bad(
            "device", f"unknown device {raw['device']!r}", f"use {', '.join(DEVICES[:-1])} or {DEVICES[-1]}"
        )
    # which formats and datasets exist is the data layer's registry (bench.data.resolve.check_dataset)
    if not isinstance(raw["dataset"]["format"], str) or not raw["dataset"]["format"]:
        raise bad(
            "dataset.format", "must be a format name", "use auto or a format of `recxbench list datasets`"
        )

    def positive_int(key: str, value: Any, *, optional: bool = False) -> None:
        if optional and value is None:
            return
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise bad(
                key, f"must be a positive integer{' or null' if optional else ''}, not {value!r}", "e.g. 3"
            )

    positive_int("dataset.min_interactions", raw["dataset"]["min_interactions"])
    # which recipes exist is the data layer's registry too (bench.data.resolve.check_dataset)
    if not isinstance(raw["dataset"]["recipe"]["name"], str) or not raw["dataset"]["recipe"]["name"]:
        raise bad("dataset.recipe.name", "must be a recipe name", "use none, recexplainer or lane")
    u = raw["users"]
    for cap in ("max_train", "max_valid", "max_test"):
        positive_int(f"users.{cap}", u[cap], optional=True)
    positive_int("users.train_contexts_per_user", u["train_contexts_per_user"])
    for k in ("align_train", "align_valid", "align_test"):
        if not isinstance(u[k], (int, float)) or not 0 <= u[k] <= 1:
            raise bad(f"users.{k}", "must be a share between 0 and 1", "e.g. 0.3")
    if u["align_train"] + u["align_valid"] + u["align_test"] > 1.0 + 1e-9:
        raise bad("users", "align_train + align_valid + align_test exceeds 1", "lower the shares")
    s = raw["stats"]
    if s["correction"] not in ("holm", "bh", "none"):
        raise bad("stats.correction", f"unknown correction {s['correction']!r}", "use holm, bh or none")
    if s["test"] not in ("auto", "randomization", "bootstrap", "wilcoxon"):
        raise bad(
            "stats.test", f"unknown test {s['test']!r}", "use auto, randomization, bootstrap or wilcoxon"
        )
    if not isinstance(s["resamples"], int) or s["resamples"] < 100:
        raise bad("stats.resamples", "must be an integer >= 100", "e.g. 10000")
    for key, example in (("alpha", "0.05"), ("confidence", "0.95")):
        value = s[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
            raise bad(f"stats.{key}", f"must be a number in (0, 1), not {value!r}", f"e.g. {example}")
    for key, value in (raw["tolerances"] or {}).items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise bad(f"tolerances.{key}", f"must be a non-negative number, not {value!r}", "e.g. 0.02")
    if s["unit"] not in ("auto", "user", "instance"):
        raise bad("stats.unit", f"unknown resampling unit {s['unit']!r}", "use auto, user or instance")
    if not isinstance(raw["tasks"], list) or not raw["tasks"]:
        raise bad("tasks", "a suite needs at least one task", "list task names, e.g. [item_ranking]")
    if not isinstance(raw["seed"], int):
        raise bad("seed", "must be an integer", "e.g. 0")
