"""The attribute validity card (optional): how well each LLM attribute score predicts the metadata value
it is mapped to (guided-embedding; ``results.json`` → ``attribute_validity``, present only when a run
has such an explainer and its attribute list maps attributes for the dataset).

``attribute_validity`` is ``{explainer label: card}``; a card is ``{"dataset", "attributes",
"n_items", "metric", "rows": [{"attribute", "metadata", "positives", "auc", "ci_low", "ci_high"}]}``,
and, from runs that record them, ``catalog_items``, ``retrieval_returned`` and
``retrieval_returned_unscored`` (the card then says how many items carried the neutral vector).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import bench.report._model as m
from bench.report._model import NA, Card, Cell, Column, Field, Row, Table

__all__ = ["attribute_card", "attribute_markdown"]

_COLUMNS = (
    Column("attribute", "Attribute", numeric=False),
    Column("metadata", "Metadata value", numeric=False),
    Column("positives", "Items with it"),
    Column("auc", "AUC"),
    Column("ci", "95 % CI", numeric=False),
)


def _cards(results: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """One card per distinct (dataset, attribute list, scored items): rows sharing the scores share it."""
    out: dict[str, Mapping[str, Any]] = {}
    seen: set[str] = set()
    for label, card in sorted((results.get("attribute_validity") or {}).items()):
        key = m.flat({k: card.get(k) for k in ("dataset", "attributes", "n_items")}) + m.flat(
            card.get("rows")
        )
        if key not in seen:
            seen.add(key)
            out[label] = card
    return out


def attribute_card(results: Mapping[str, Any], *, id_prefix: str = "") -> Card | None:
    """The board's card, or ``None`` when ``results.json`` has no ``attribute_validity``."""
    cards = _cards(results)
    if not cards:
        return None
    tables, fields = [], []
    for label, card in cards.items():
        rows = []
        for r in card.get("rows") or []:
            auc = m.num(r.get("auc"))
            lo, hi = m.num(r.get("ci_low")), m.num(r.get("ci_high"))
            rows.append(
                Row(
                    str(r.get("attribute")),
                    (
                        Cell(str(r.get("attribute")), numeric=False),
                        Cell(str(r.get("metadata")), numeric=False),
                        Cell(str(r.get("positives")), sort=m.num(r.get("positives"))),
                        Cell(NA, na=True) if auc is None else Cell(m.fmt(auc), sort=auc),
                        Cell(NA, na=True)
                        if lo is None or hi is None
                        else Cell(f"[{m.fmt(lo)}, {m.fmt(hi)}]", numeric=False),
                    ),
                )
            )
        title = f"{label}: {card.get('attributes')} attributes on {card.get('dataset')} ({card.get('n_items')} items scored)"
        tables.append(
            Table(
                id=f"{id_prefix}attributes-{len(tables) + 1}", title=title, columns=_COLUMNS, rows=tuple(rows)
            )
        )
        fields.append(Field("Metric", str(card.get("metric", "ROC AUC"))))
    extra = [f for f in (_unscored(label, card) for label, card in cards.items()) if f is not None]
    return Card(title="Attribute validity", fields=(*fields[:1], *extra), tables=tuple(tables))


def _unscored(label: str, card: Mapping[str, Any]) -> Field | None:
    """What ``items: needed`` left without scores (they carry the neutral vector everywhere)."""
    n, total = m.num(card.get("n_items")), m.num(card.get("catalog_items"))
    if n is None or total is None or n >= total:
        return None
    text = (
        f"{int(total - n)} of {int(total)} catalog items have no attribute scores (items: needed); "
        "they carry the neutral attribute vector (z = 0)"
    )
    returned = m.num(card.get("retrieval_returned"))
    if returned:
        unscored = int(m.num(card.get("retrieval_returned_unscored")) or 0)
        text += f", also in retrieval, where {unscored} of {int(returned)} returned items were unscored"
    return Field(f"Unscored items ({label})", text + ".")


def attribute_markdown(results: Mapping[str, Any], *, level: int, table: Any) -> list[str]:
    """Markdown lines of the card (``table``: the writer's Markdown table function); [] when absent."""
    card = attribute_card(results)
    if card is None:
        return []
    out = ["", f"{'#' * level} {card.title}", ""]
    out += [f"- {f.label}: {f.value}" for f in card.fields]
    out.append("- 0.5 = the attribute says nothing about the metadata value for this backbone.")
    for t in card.tables:
        out += ["", t.title, "", table(t)]
    return out
