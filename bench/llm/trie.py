"""A token trie over catalog titles, for decoding that can only produce a catalog title.

Each title is tokenised as an *answer* (``encode_continuation(prefix_text + title)``, the same
convention as scoring, so a constrained generation and a scored title are the same token ids) and
terminated by the EOS token. A path from the root spells a title iff it ends with EOS; titles that
are prefixes of other titles (``"Alien"``, ``"Alien 3"``) simply have both EOS and further tokens
allowed at the shared node. Generation restricted to :meth:`TitleTrie.allowed` therefore ends,
within :attr:`TitleTrie.max_len` steps, on exactly one title followed by EOS, and
:meth:`TitleTrie.lookup` maps the generated ids back to the title string verbatim (never through
``decode``, which need not round-trip).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from bench.llm.chat import encode_continuation

log = logging.getLogger(__name__)


class _Node:
    __slots__ = ("_sorted", "children", "title")

    def __init__(self) -> None:
        self.children: dict[int, _Node] = {}
        #: Set on the node reached by the EOS token: the title this path spells.
        self.title: str | None = None
        #: ``sorted(children)``, computed on first use (the trie is not changed while decoding).
        self._sorted: list[int] | None = None


class TitleTrie:
    """Token-level trie of titles, each path terminated by ``eos_id``.

    Attributes:
        eos_id: the terminating token (the tokenizer's EOS).
        prefix_text: text prepended to every title before tokenising (e.g. ``" "``).
        titles: the distinct titles, in insertion order.
        max_len: the most tokens any title takes, EOS included.
    """

    def __init__(self, eos_id: int, *, prefix_text: str = "") -> None:
        self.eos_id = eos_id
        self.prefix_text = prefix_text
        self.titles: list[str] = []
        self.max_len = 0
        self._title_set: set[str] = set()
        self._root = _Node()

    @classmethod
    def build(cls, tokenizer: Any, titles: Iterable[str], *, prefix_text: str = "") -> TitleTrie:
        """Tokenise ``prefix_text + title`` for each title as an answer and insert it.

        Empty and duplicate titles are skipped; two different titles that tokenise to the same ids
        (only possible with a normalising tokenizer) keep the first, with a warning.
        """
        if tokenizer.eos_token_id is None:
            raise ValueError("the tokenizer has no EOS token to terminate titles with")
        trie = cls(tokenizer.eos_token_id, prefix_text=prefix_text)
        for title in dict.fromkeys(titles):
            if not title:
                continue
            ids = encode_continuation(tokenizer, prefix_text + title)
            if trie.eos_id in ids:
                # Generation stops at EOS, so such a title could never be produced whole.
                log.warning("skipping title %r: it tokenises to ids containing EOS", title)
                continue
            trie.add(ids, title)
        return trie

    def add(self, ids: Sequence[int], title: str) -> None:
        """Insert one title given its token ids (without EOS)."""
        if self.eos_id in ids:
            raise ValueError(f"title {title!r} tokenises to ids containing EOS")
        node = self._root
        for tok in [*ids, self.eos_id]:
            node._sorted = None
            node = node.children.setdefault(tok, _Node())
        if node.title is not None:
            if node.title != title:
                log.warning("titles %r and %r tokenise identically; keeping the first", node.title, title)
            return
        node.title = title
        self.titles.append(title)
        self._title_set.add(title)
        self.max_len = max(self.max_len, len(ids) + 1)

    def __len__(self) -> int:
        return len(self.titles)

    def _walk(self, ids: Iterable[int]) -> _Node | None:
        node = self._root
        for tok in ids:
            nxt = node.children.get(tok)
            if nxt is None:
                return None
            node = nxt
        return node

    @property
    def root(self) -> _Node:
        """The root node (for incremental walks: ``node.children[token]``)."""
        return self._root

    def node(self, prefix_ids: Sequence[int]) -> _Node | None:
        """The node ``prefix_ids`` leads to, or None off the trie."""
        return self._walk(prefix_ids)

    @staticmethod
    def sorted_children(node: _Node | None) -> list[int]:
        """Tokens that may follow ``node`` (sorted, cached on the node); ``[]`` for None or a leaf.

        The returned list is shared: do not modify it.
        """
        if node is None:
            return []
        if node._sorted is None:
            node._sorted = sorted(node.children)
        return node._sorted

    def allowed_ids_root(self) -> list[int]:
        """Tokens a title may start with (sorted, shared: do not modify)."""
        return self.sorted_children(self._root)

    def allowed(self, prefix_ids: Sequence[int]) -> list[int]:
        """Tokens that may follow ``prefix_ids`` (sorted); ``[]`` after EOS or off the trie."""
        return list(self.sorted_children(self._walk(prefix_ids)))

    def lookup(self, ids: Sequence[int]) -> str | None:
        """The title spelled by ``ids`` up to and including its first EOS, else None.

        Anything after that EOS (padding) is ignored; ids that leave the trie or never reach EOS
        (a generation cut short) give None.
        """
        ids = list(ids)
        if self.eos_id not in ids:
            return None
        node = self._walk(ids[: ids.index(self.eos_id) + 1])
        return node.title if node is not None else None

    def __contains__(self, title: object) -> bool:
        return title in self._title_set
