"""Compare a run's ``results.json`` with a committed snapshot of the code before a refactor.

Wall times differ between runs and are not compared; every other value must be equal (floats to
1e-9 relative: the same code on the same kind of machine gives the same bits, and a refactor that
changes a figure must show up). An explainer entry may gain provenance keys (``info()`` is merged
whole into results.json since the architecture change); it may not lose or change one.
"""

from __future__ import annotations

import math
from typing import Any

#: wall-time keys, never compared
TIMING_KEYS = frozenset({"train_seconds", "seconds", "tokens_per_second", "fit_seconds"})


def strip_timings(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: strip_timings(v) for k, v in obj.items() if k not in TIMING_KEYS}
    if isinstance(obj, list):
        return [strip_timings(v) for v in obj]
    return obj


def differences(snapshot: Any, current: Any, path: str = "") -> list[str]:
    """Every path where ``current`` differs from ``snapshot`` (timings ignored)."""
    snapshot, current = strip_timings(snapshot), strip_timings(current)
    out: list[str] = []
    _walk(snapshot, current, path, out)
    return out


def _walk(a: Any, b: Any, path: str, out: list[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        extra_ok = path.startswith("/explainers/") and path.count("/") == 2
        for k in a:
            if k not in b:
                out.append(f"{path}/{k}: missing")
            else:
                _walk(a[k], b[k], f"{path}/{k}", out)
        for k in b:
            if k not in a and not extra_ok:
                out.append(f"{path}/{k}: not in the snapshot")
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append(f"{path}: length {len(a)} != {len(b)}")
        for i, (x, y) in enumerate(zip(a, b)):
            _walk(x, y, f"{path}[{i}]", out)
    elif isinstance(a, float) and isinstance(b, (int, float)) and not isinstance(b, bool):
        if not math.isclose(a, float(b), rel_tol=1e-9, abs_tol=1e-12):
            out.append(f"{path}: {a!r} != {b!r}")
    elif a != b or type(a) is not type(b):
        out.append(f"{path}: {a!r} != {b!r}")


#: the fields of a samples row that carry an answer or a score (the rest is presentation)
SAMPLE_FIELDS = ("instance_id", "key", "prediction", "label", "raw", "parse_ok", "confidence", "scores")


def samples_digest(run_dir: Any) -> dict[str, str]:
    """``{"<explainer>/<task>": sha256}`` of every samples file's answer and score fields, so a
    refactor that changed one prediction shows up even where the aggregates happen to agree."""
    import hashlib
    import json
    from pathlib import Path

    out = {}
    for path in sorted(Path(run_dir, "samples").glob("*/*.jsonl")):
        h = hashlib.sha256()
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            h.update(json.dumps({k: row.get(k) for k in SAMPLE_FIELDS}, sort_keys=True).encode())
        out[f"{path.parent.name}/{path.stem}"] = h.hexdigest()
    return out
