"""Interpretable item attributes scored by an LLM without parsing text (guided-embedding refinement).

For item ``i`` and attribute ``a`` the prompt is, inside the backbone's chat format::

    [instructions (all attributes, with descriptions)] [item i] [end of turn, assistant] [a's name ": "]

(templates ``tasks/prompts/guided_{instructions,item,question}.j2``). The score is read from the
next token only::

    p_k   = exp(l_k) / Σ_{j=1..5} exp(l_j)      l_k = log P("k" | prompt) (+ a constant), k = 1..5
    E     = Σ_k k · p_k                          (the expected rating, in [1, 5])
    score = (E − 1) / 4                          (in [0, 1])

so no free text is generated or parsed. The instructions are the same for every item: their KV cache
is computed once per scoring call; each item's part runs once after it, with every attribute's
continuation (its name, a few tokens) packed into the same pass behind a tree-shaped attention mask
(or, for attention that takes no 4-D mask, after a copy of the item's cache;
:func:`bench.llm.next_token.next_token_logits`). Each attribute is read on its own: no attribute's
continuation sees another's.

Scores are cached under ``$RECXBENCH_HOME/attributes/`` per (backbone digest, dtype, catalog hash,
attribute-list hash, prompt hash): every suite with the same backbone, catalog and attribute list
shares them, and items are scored only once whatever subset a suite asks for. ``hits``/``misses`` of
:class:`AttributeScorer` say how many of the last request's items came from the cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.errors import UserError
from bench.io import atomic_write

log = logging.getLogger(__name__)

#: the rating scale read from the next token (a 1..5 Likert scale; the paper's scale is not published)
DIGITS: tuple[str, ...] = ("1", "2", "3", "4", "5")
#: splits a chat-formatted prompt into the shared instructions and the item's part
_MARK = "\u2063ATTRIBUTE_ITEM\u2063"
#: the templates of the prompt's three parts (``tasks/prompts/guided_<part>.j2``)
_PARTS: tuple[str, ...] = ("instructions", "item", "question")


@dataclass(frozen=True)
class Attribute:
    """One interpretable attribute: its name and the one-line description the prompt shows."""

    name: str
    description: str


@dataclass(frozen=True)
class AttributeList:
    """A domain's attributes (``tasks/attributes/<name>.yaml``) and its metadata mapping.

    ``validity[dataset][attribute] = metadata value`` (a genre): the attribute's score should
    predict that value (the validity card).
    """

    name: str
    domain: str
    item_noun: str
    attributes: tuple[Attribute, ...]
    validity: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [a.name for a in self.attributes]

    @property
    def sha256(self) -> str:
        """Identity of what the prompts ask: the item noun and the (name, description) pairs in order."""
        payload = [self.item_noun, [[a.name, a.description] for a in self.attributes]]
        return hashlib.sha256(json.dumps(payload, ensure_ascii=False).encode("utf-8")).hexdigest()


def load_attributes(spec: str) -> AttributeList:
    """An attribute list by name (``tasks/attributes/<spec>.yaml``) or by path to a YAML file."""
    import yaml

    from bench.resources import tasks_dir

    path = Path(spec) if spec.endswith((".yaml", ".yml")) else tasks_dir() / "attributes" / f"{spec}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in (tasks_dir() / "attributes").glob("*.yaml"))
        raise UserError(
            f"no attribute list {spec!r} ({path})",
            where="explainers.params.attributes",
            fix=f"use one of: {', '.join(known)}, or a path to a YAML file",
        )
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    try:
        attrs = tuple(Attribute(str(a["name"]), str(a["description"])) for a in data["attributes"])
        extra = sorted({str(k) for a in data["attributes"] for k in a} - {"name", "description"})
    except (KeyError, TypeError):
        raise UserError(
            f"attribute list {path} needs `attributes: [{{name, description}}, ...]`",
            where=str(path),
            fix="give every attribute a name and a one-line description",
        ) from None
    if extra:
        # `{name: x, description: a, b}` parses as a key "b": the description silently loses its end
        raise UserError(
            f"attribute list {path}: unknown key(s) {', '.join(repr(k) for k in extra)} in an attribute",
            where=str(path),
            fix="give each attribute only name and description; quote a description that has a comma",
        )
    names = [a.name for a in attrs]
    if not attrs or len(set(names)) != len(names):
        raise UserError(f"attribute list {path} is empty or names an attribute twice", where=str(path))
    validity = {
        str(ds): {str(k): str(v) for k, v in (m or {}).items()}
        for ds, m in (data.get("validity") or {}).items()
    }
    for ds, mapping in validity.items():
        unknown = sorted(set(mapping) - set(names))
        if unknown:
            raise UserError(
                f"attribute list {path}: validity.{ds} names unknown attribute(s) {', '.join(unknown)}",
                where=str(path),
                fix=f"use names from its list: {', '.join(names)}",
            )
    return AttributeList(
        name=path.stem,
        domain=str(data.get("domain", path.stem)),
        item_noun=str(data.get("item_noun", "item")),
        attributes=attrs,
        validity=validity,
    )


def expected_scores(logprobs: np.ndarray) -> np.ndarray:
    """``(E − 1) / 4`` with ``E = Σ_k k · softmax(logprobs)_k`` over the last axis (the five digits)."""
    lp = np.asarray(logprobs, dtype=np.float64)
    p = np.exp(lp - lp.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    ks = np.arange(1, lp.shape[-1] + 1, dtype=np.float64)
    return (p @ ks - 1.0) / (lp.shape[-1] - 1)


@dataclass(frozen=True)
class ItemText:
    """What the prompt shows of one item (whatever metadata the dataset has)."""

    title: str
    year: int | None = None
    genres: tuple[str, ...] = ()


def _templates() -> tuple[dict[str, Any], str]:
    import jinja2
    from jinja2.sandbox import SandboxedEnvironment

    from bench.resources import tasks_dir

    texts = [(tasks_dir() / "prompts" / f"guided_{n}.j2").read_text(encoding="utf-8") for n in _PARTS]
    # user-editable templates: rendered in Jinja2's sandbox (no attribute access to Python internals)
    env = SandboxedEnvironment(
        autoescape=False, keep_trailing_newline=False, undefined=jinja2.StrictUndefined
    )
    digest = hashlib.sha256(json.dumps([*texts, list(DIGITS)]).encode("utf-8")).hexdigest()
    return {n: env.from_string(t) for n, t in zip(_PARTS, texts, strict=True)}, digest


def catalog_hash(items: Sequence[ItemText]) -> str:
    """sha256 of every item's title, year and genres (the prompt's inputs), in catalog order."""
    payload = [[it.title, it.year, list(it.genres)] for it in items]
    return hashlib.sha256(json.dumps(payload, ensure_ascii=False).encode("utf-8")).hexdigest()


def attributes_home() -> Path:
    """``$RECXBENCH_HOME/attributes`` (shared by every suite and run)."""
    from bench.wheels import cache_root

    return cache_root() / "attributes"


class AttributeScorer:
    """Scores catalog items on an attribute list with one backbone, through the shared cache.

    Args:
        backbone: a loaded :class:`~bench.llm.backbone.Backbone`.
        attributes: the attribute list.
        items: the whole catalog's item texts (index = internal item index).
        directory: the cache directory (default :func:`attributes_home`).
        batch_size: items per forward pass of their prefixes.
        save_every: items scored between two writes of the cache.
    """

    def __init__(
        self,
        backbone: Any,
        attributes: AttributeList,
        items: Sequence[ItemText],
        *,
        directory: Path | None = None,
        batch_size: int = 8,
        save_every: int = 64,
    ) -> None:
        self.backbone = backbone
        self.save_every = max(1, int(save_every))
        self.attributes = attributes
        self.items = list(items)
        self.batch_size = int(batch_size)
        self.templates, self.prompt_sha256 = _templates()
        self.catalog_sha256 = catalog_hash(self.items)
        key = hashlib.sha256(
            "\0".join(
                # the dtype too: bf16 (CUDA) and fp32 (CPU) scores differ, a cache never mixes them
                [backbone.sha256, str(getattr(backbone, "dtype", "float32")), self.catalog_sha256]
                + [attributes.sha256, self.prompt_sha256]
            ).encode()
        ).hexdigest()
        self.key = key
        self.path = (directory or attributes_home()) / f"{key[:24]}.npz"
        #: items of the last :meth:`score` call read from the cache / scored anew (distinct items)
        self.hits = 0
        self.misses = 0
        self._digits = self._digit_ids()
        self.shared_ids, self._item_end, self._suffixes = self._fixed_parts()

    def _digit_ids(self) -> list[int]:
        from bench.llm.chat import encode_continuation

        ids = [encode_continuation(self.backbone.tokenizer, d) for d in DIGITS]
        if any(len(x) != 1 for x in ids):
            raise UserError(
                f"backbone {self.backbone.spec!r} does not write each digit 1..5 as one token",
                fix="use another backbone for guided-embedding (the scale is read from one next token)",
            )
        return [x[0] for x in ids]

    # -- prompts ---------------------------------------------------------------------------------

    def _fixed_parts(self) -> tuple[list[int], str, list[list[int]]]:
        """The token ids of the shared instructions, the chat text that closes every item's part
        (end of turn, assistant header) and each attribute's continuation ids."""
        from bench.llm.chat import encode_continuation, encode_prompt, format_prompt

        noun = self.attributes.item_noun
        head = self.templates["instructions"].render(
            attributes=[{"name": a.name, "description": a.description} for a in self.attributes.attributes],
            item_noun=noun,
        )
        full = format_prompt(self.backbone, f"{head}{_MARK}")
        before, _, after = full.partition(_MARK)
        tok = self.backbone.tokenizer
        suffixes = [
            # only trailing newlines go: a template may end its continuation with a space on purpose
            self.templates["question"]
            .render(name=a.name, description=a.description, item_noun=noun)
            .rstrip("\n")
            for a in self.attributes.attributes
        ]
        return encode_prompt(tok, before), after, [encode_continuation(tok, q) for q in suffixes]

    def prompt_parts(self, item: int) -> tuple[list[int], list[list[int]]]:
        """Token ids of item ``item``'s part (after :attr:`shared_ids`) and of each attribute's
        continuation of it; ``shared_ids + part + continuation`` is one whole prompt."""
        from bench.llm.chat import encode_continuation

        it = self.items[item]
        text = (
            self.templates["item"]
            .render(title=it.title, year=it.year, genres=list(it.genres), item_noun=self.attributes.item_noun)
            .strip()
        )
        return encode_continuation(self.backbone.tokenizer, text + self._item_end), self._suffixes

    def digit_logprobs(self, items: Sequence[int]) -> np.ndarray:
        """``[len(items), m, 5]`` log P(digit | instructions + item + attribute), computed (never cached)."""
        from bench.llm.next_token import next_token_logits

        parts = [self.prompt_parts(int(i)) for i in items]
        out = next_token_logits(
            self.backbone.model,
            [p for p, _ in parts],
            [s for _, s in parts],
            self._digits,
            pad_id=self.backbone.tokenizer.pad_token_id,
            shared_ids=self.shared_ids,
            batch_size=self.batch_size,
        )
        return np.stack(out) if out else np.zeros((0, len(self.attributes.attributes), len(DIGITS)))

    # -- cache -----------------------------------------------------------------------------------

    def _load(self) -> dict[int, np.ndarray]:
        if not self.path.is_file():
            return {}
        with np.load(self.path) as z:
            return {int(i): s for i, s in zip(z["items"].tolist(), z["scores"], strict=True)}

    def _save(self, known: Mapping[int, np.ndarray]) -> None:
        keys = sorted(known)

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as fh:
                np.savez(
                    fh, items=np.asarray(keys, dtype=np.int64), scores=np.stack([known[k] for k in keys])
                )

        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path, write)

    def score(self, items: Sequence[int] | None = None) -> np.ndarray:
        """``[len(items), m]`` scores in [0, 1] (all catalog items when ``items`` is None)."""
        wanted = list(range(len(self.items))) if items is None else [int(i) for i in items]
        known = self._load()
        missing = [i for i in dict.fromkeys(wanted) if i not in known]  # in the order asked for
        self.hits, self.misses = len(set(wanted)) - len(missing), len(missing)
        if missing:
            log.info(
                "guided-embedding: scoring %d items on %d attributes",
                len(missing),
                len(self.attributes.attributes),
            )
        # saved chunk by chunk: an interrupted scoring of a whole catalog keeps what it finished
        for start in range(0, len(missing), self.save_every):
            chunk = missing[start : start + self.save_every]
            scores = expected_scores(self.digit_logprobs(chunk)).astype(np.float32)
            known = {
                **self._load(),
                **dict(zip(chunk, scores, strict=True)),
            }  # another process may have added some
            self._save(known)
        m = len(self.attributes.attributes)
        if not wanted:
            return np.zeros((0, m), dtype=np.float32)
        return np.stack([known[i] for i in wanted]).astype(np.float32)

    def cached_items(self) -> list[int]:
        """Items whose scores are in the cache."""
        return sorted(self._load())

    def info(self) -> dict[str, Any]:
        return {
            "attributes": self.attributes.name,
            "attribute_names": self.attributes.names,
            "scale": "expected value of 1..5 from the five digit tokens' log-likelihoods, (E-1)/4",
            "cache_key": self.key[:24],
            "prompt_sha256": self.prompt_sha256,
            "catalog_sha256": self.catalog_sha256,
            "attributes_sha256": self.attributes.sha256,
        }
