"""Reading ``results.json`` into a :class:`~bench.results.model.Run`, with one-line errors."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.errors import UserError
from bench.io import read_json
from bench.results.model import (
    SCHEMA_VERSION,
    ClaimVerdict,
    Comparison,
    Dataset,
    MetricSpec,
    ResultRow,
    Run,
    TaskSpec,
)


def load_results(source: str | os.PathLike[str] | Mapping[str, Any], *, where: str | None = None) -> Run:
    """A :class:`Run` from a ``results.json`` path, a run directory holding one, or a parsed dict.

    Raises :class:`UserError` (one line: what, where, fix) when the file is missing, is not JSON, is
    not a recxbench results.json, or has another ``schema_version``.
    """
    if isinstance(source, Mapping):
        return _parse(source, where or "results.json")
    if not isinstance(source, (str, os.PathLike)):
        raise UserError(
            f"results must be a JSON object, not {type(source).__name__}",
            where=where or "results.json",
            fix="pass the parsed results.json of a run",
        )
    path = Path(source)
    if path.is_dir():
        if not (path / "results.json").exists():
            raise UserError(
                "no results.json (not a finished run directory)",
                where=str(path),
                fix="point to a RUN_DIR written by `recxbench run`",
            )
        path = path / "results.json"
    elif not path.exists():
        raise UserError("no such file", where=str(path), fix="point to a results.json or a RUN_DIR")
    try:
        data = read_json(path)
    except (ValueError, UnicodeDecodeError) as err:
        raise UserError(
            f"results.json is not valid JSON ({err})", where=str(path), fix="re-run the suite"
        ) from None
    return _parse(data, where or str(path))


def _bad(what: str, where: str) -> UserError:
    return UserError(what, where=where, fix="pass the results.json of a finished `recxbench run`")


def _num(value: Any, what: str, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _bad(f"{what} must be a number, got {value!r}", where)
    return float(value)


def _int(value: Any, what: str, where: str) -> int | None:
    x = _num(value, what, where)
    if x is None or math.isnan(x):
        return None
    return int(x)


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _mapping(value: Any, what: str, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _bad(f"{what} must be a JSON object", where)
    return value


def _parse(data: Any, where: str) -> Run:
    if not isinstance(data, Mapping):
        raise UserError(
            "results must be a JSON object", where=where, fix="pass the parsed results.json of a run"
        )
    if "schema_version" not in data:
        raise _bad("not a recxbench results.json (no schema_version)", where)
    if data["schema_version"] != SCHEMA_VERSION:
        raise UserError(
            f"unsupported schema_version {data['schema_version']!r} (expected {SCHEMA_VERSION})",
            where=where,
            fix="re-run the suite with this version of recxbench",
        )
    for key in ("tasks", "results"):
        if key not in data:
            raise UserError(f"missing key {key!r}", where=where, fix="pass a complete results.json")
    tasks = {
        str(name): _task(str(name), spec, where)
        for name, spec in _mapping(data["tasks"], "tasks", where).items()
    }
    if not isinstance(data["results"], list):
        raise _bad("results must be a list of rows", where)
    rows = tuple(_row(i, r, where) for i, r in enumerate(data["results"]))
    dataset = _mapping(data.get("dataset"), "dataset", where)
    protocol = _mapping(data.get("protocol"), "protocol", where)
    tolerances = _mapping(data.get("tolerances"), "tolerances", where)
    return Run(
        source=where,
        suite=_str(data.get("suite")),
        seed=_int(data.get("seed"), "seed", where),
        alpha=_num(data.get("alpha"), "alpha", where),
        correction=_str(data.get("correction")),
        dataset=Dataset(name=_str(dataset.get("name")), sha256=_str(dataset.get("sha256"))),
        tasks=tasks,
        results=rows,
        comparisons=tuple(_comparison(i, c, where) for i, c in enumerate(data.get("comparisons") or [])),
        claims=tuple(_claim(i, c, where) for i, c in enumerate(data.get("claims") or [])),
        tolerances={str(k): float(_num(v, f"tolerances.{k}", where) or 0.0) for k, v in tolerances.items()},
        resampling_unit={
            str(k): str(v)
            for k, v in _mapping(protocol.get("resampling_unit"), "protocol.resampling_unit", where).items()
        },
        raw=data,
    )


def _task(name: str, spec: Any, where: str) -> TaskSpec:
    spec = _mapping(spec, f"tasks.{name}", where)
    metrics = []
    for j, m in enumerate(spec.get("metrics") or []):
        if not isinstance(m, Mapping) or "name" not in m:
            raise _bad(f"tasks.{name}.metrics[{j}] must be an object with a name", where)
        metrics.append(
            MetricSpec(
                name=str(m["name"]),
                higher_is_better=bool(m.get("higher_is_better", True)),
                binary=bool(m.get("binary", False)),
                ratio=bool(m.get("ratio", False)),
                auc=bool(m.get("auc", False)),
                description=str(m.get("description") or ""),
            )
        )
    return TaskSpec(
        name=name,
        config_sha256=_str(spec.get("config_sha256")),
        metrics=tuple(metrics),
        kind=_str(spec.get("kind")),
        main_metric=_str(spec.get("main_metric")),
        n_instances=_int(spec.get("n_instances"), f"tasks.{name}.n_instances", where),
        description=str(spec.get("description") or ""),
    )


def _row(i: int, r: Any, where: str) -> ResultRow:
    if not isinstance(r, Mapping):
        raise _bad(f"results[{i}] must be a JSON object", where)
    missing = [k for k in ("explainer", "task", "metric") if k not in r]
    if missing:
        raise UserError(
            f"results[{i}] lacks {', '.join(missing)}", where=where, fix="pass a complete results.json"
        )
    at = f"results[{i}]"
    return ResultRow(
        explainer=str(r["explainer"]),
        task=str(r["task"]),
        metric=str(r["metric"]),
        value=_num(r.get("value"), f"{at}.value", where),
        ci_low=_num(r.get("ci_low"), f"{at}.ci_low", where),
        ci_high=_num(r.get("ci_high"), f"{at}.ci_high", where),
        n=_int(r.get("n"), f"{at}.n", where),
        access=_str(r.get("access")),
        unit=_str(r.get("unit")),
        group=_int(r.get("group"), f"{at}.group", where),
    )


def _comparison(i: int, c: Any, where: str) -> Comparison:
    if not isinstance(c, Mapping):
        raise _bad(f"comparisons[{i}] must be a JSON object", where)
    at = f"comparisons[{i}]"
    return Comparison(
        task=str(c.get("task")),
        metric=str(c.get("metric")),
        a=str(c.get("a")),
        b=str(c.get("b")),
        diff=_num(c.get("diff"), f"{at}.diff", where),
        test=_str(c.get("test")),
        p_value=_num(c.get("p_value"), f"{at}.p_value", where),
        p_adjusted=_num(c.get("p_adjusted"), f"{at}.p_adjusted", where),
        significant=bool(c.get("significant", False)),
    )


def _claim(i: int, c: Any, where: str) -> ClaimVerdict:
    if not isinstance(c, Mapping):
        raise _bad(f"claims[{i}] must be a JSON object", where)
    return ClaimVerdict(
        claim=str(c.get("claim")),
        verdict=str(c.get("verdict")),
        p_adjusted=_num(c.get("p_adjusted"), f"claims[{i}].p_adjusted", where),
        diff=_num(c.get("diff"), f"claims[{i}].diff", where),
        note=str(c.get("note") or ""),
    )
