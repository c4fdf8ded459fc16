"""Cards: the target recommender, the evaluation protocol and the run's provenance.

Pure functions from ``results.json`` / ``manifest.json`` dicts to :class:`~bench.report.tables.Card`
models (label/value fields plus small tables); re-exported by :mod:`bench.report.tables`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import bench.report._model as m
from bench.report._model import NA, Card, Cell, Column, Field, Row, Table

__all__ = ["protocol_card", "provenance", "target_card"]


def target_card(results: Mapping[str, Any], *, id_prefix: str = "") -> Card:
    """The target recommender: test (and validation) metrics next to the baselines' test metrics."""
    target = results.get("target") or {}
    test = target.get("test") or {}
    lines: list[tuple[str, Mapping[str, Any]]] = [(f"{target.get('name', 'target')} (test)", test)]
    if target.get("valid"):
        lines.append((f"{target.get('name', 'target')} (valid)", target["valid"]))
    for window, vals in sorted((target.get("teacher_view") or {}).items(), key=lambda kv: int(kv[0])):
        lines.append((f"{target.get('name', 'target')} teacher view, last {window} items (test)", vals or {}))
    for base, vals in (target.get("baselines") or {}).items():
        lines.append((f"{base} baseline (test)", (vals or {}).get("test") or {}))
    metrics: list[str] = []
    for _, vals in lines:
        metrics += [k for k in vals if k not in metrics]
    columns = (Column("model", "Model", numeric=False), *(Column(k, k) for k in metrics))
    rows = []
    for label, vals in lines:
        cells = [Cell(label, numeric=False)]
        for k in metrics:
            v = m.num(vals.get(k))
            cells.append(Cell(NA, na=True) if v is None else Cell(m.fmt(v), sort=v))
        rows.append(Row(label, tuple(cells)))
    fields = [Field("Model", str(target.get("name", "")))]
    secs = m.num(target.get("train_seconds"))
    if secs is not None:
        fields.append(Field("Training time", f"{secs:,.1f} s"))
    if target.get("config"):
        fields.append(Field("Config", m.flat(target["config"]), mono=True))
    table = Table(
        id=f"{id_prefix}target-metrics", title="Target and baselines", columns=columns, rows=tuple(rows)
    )
    return Card(title="Target recommender", fields=tuple(fields), tables=(table,))


_PROTOCOL_LABELS = {
    "split": "Split",
    "masking": "Masking",
    "access": "Access levels",
    "resampling_unit": "Resampling unit",
    "history_len": "History length",
    "users": "Users",
    "decoding": "Decoding",
}


def protocol_card(results: Mapping[str, Any]) -> Card:
    """Split, history length, user split, per-task protocol (candidates, sampling), K values, decoding."""
    proto = results.get("protocol") or {}
    fields = []
    for key in ("split", "history_len", "users"):
        if key in proto:
            fields.append(Field(_PROTOCOL_LABELS[key], m.flat(proto[key])))
    for task, spec in (proto.get("tasks") or {}).items():
        fields.append(Field(f"Task · {task}", m.flat(spec)))
    ks = []
    for task in m.task_names(results):
        found = sorted(
            {int(x) for s in m.metric_specs(results, task) for x in re.findall(r"@(\d+)$", s["name"])}
        )
        if found:
            ks.append(f"{task}: {', '.join(map(str, found))}")
    if ks:
        fields.append(Field("K values", " · ".join(ks)))
    if "decoding" in proto:
        fields.append(Field("Decoding", m.flat(proto["decoding"]), mono=True))
    for key, value in proto.items():
        if key not in ("split", "history_len", "users", "tasks", "decoding"):
            fields.append(Field(_PROTOCOL_LABELS.get(key, key.replace("_", " ").capitalize()), m.flat(value)))
    return Card(title="Protocol", fields=tuple(fields))


def provenance(manifest: Mapping[str, Any], *, id_prefix: str = "") -> Card:
    """Harness version and git sha, hashes, seed, device, judge, package versions and stage times."""
    fields = []
    version = str(manifest.get("harness_version", "?"))
    sha = manifest.get("git_sha")
    fields.append(Field("Harness", f"recxbench {version}"))
    if sha:
        fields.append(Field("Git commit", str(sha), mono=True))
    for key, label, mono in (
        ("created", "Created", False),
        ("suite", "Suite", False),
        ("suite_sha256", "Suite sha256", True),
        ("seed", "Seed", False),
        ("device", "Device", False),
        ("dataset_sha256", "Dataset sha256", True),
        ("target_checkpoint_sha256", "Target checkpoint sha256", True),
    ):
        if manifest.get(key) not in (None, ""):
            fields.append(Field(label, m.flat(manifest[key]), mono=mono))
    for task, digest in (manifest.get("task_config_sha256") or {}).items():
        fields.append(Field(f"Task config · {task}", str(digest), mono=True))
    if manifest.get("judge"):
        fields.append(Field("Judge", m.flat(manifest["judge"])))
    explainers = manifest.get("explainers")
    if isinstance(explainers, Mapping):
        for name, info in explainers.items():
            fields.append(Field(f"Explainer · {name}", m.flat(info)))
    elif explainers:
        fields.append(Field("Explainers", m.flat(explainers)))
    tables = []
    packages = manifest.get("packages") or {}
    if packages:
        cols = (Column("package", "Package", numeric=False), Column("version", "Version", numeric=False))
        rows = tuple(
            Row(k, (Cell(k, numeric=False), Cell(str(v), numeric=False))) for k, v in sorted(packages.items())
        )
        tables.append(Table(id=f"{id_prefix}packages", title="Packages", columns=cols, rows=rows))
    stages = {k: m.num(v) for k, v in (manifest.get("stages") or {}).items()}
    # the runner records the wall time of the whole run as "total"; stages only sum to about it
    wall = stages.pop("total", None)
    if stages:
        total = wall if wall else sum(v for v in stages.values() if v is not None)
        cols = (
            Column("stage", "Stage", numeric=False),
            Column("seconds", "Seconds"),
            Column("share", "Share"),
        )
        rows = [
            Row(
                k,
                (
                    Cell(k, numeric=False),
                    Cell(NA, na=True) if v is None else Cell(f"{v:,.1f}", sort=v),
                    Cell(NA, na=True)
                    if v is None or not total
                    else Cell(f"{100 * v / total:.0f} %", sort=v / total),
                ),
            )
            for k, v in stages.items()
        ]
        rows.append(
            Row(
                "total",
                (Cell("total", numeric=False), Cell(f"{total:,.1f}", sort=total), Cell("100 %", sort=1.0)),
            )
        )
        tables.append(Table(id=f"{id_prefix}stages", title="Stage times", columns=cols, rows=tuple(rows)))
    return Card(title="Provenance", fields=tuple(fields), tables=tuple(tables))
