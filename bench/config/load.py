"""Suite and task YAML files -> a validated :class:`~bench.config.schema.SuiteConfig`.

Every error names the file and the key (``quick.yaml:dataset.pth``) and says how to fix it;
unknown keys are errors, never silently skipped. ``--set a.b=value`` overrides use the same
validation (the value is parsed as YAML, so ``--set stats.resamples=2000`` is an int).
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from bench.config.schema import (
    FREE_FORM,
    SUITE_DEFAULTS,
    ExplainerSpec,
    SuiteConfig,
    TaskSpec,
    build_suite,
    validate_values,
)
from bench.errors import ConfigError, UserError
from bench.hashing import stable_hash
from bench.resources import suites_dir, tasks_dir

log = logging.getLogger(__name__)


def _load_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found", where=str(path), fix="check the path") from None
    except UnicodeDecodeError:
        raise ConfigError("not UTF-8 text", where=str(path), fix="re-save the file as UTF-8") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = str(getattr(err, "problem", "") or "")
        if "tag:yaml.org,2002:python/" in problem or "!!python" in problem:
            # safe_load already refuses to build the object; say why, not "fix the syntax"
            raise ConfigError(
                "a `!!python/...` tag is refused: suite and task files are data, no code runs from YAML",
                where=where,
                fix="write plain values (strings, numbers, lists, mappings) instead of the tag",
            ) from None
        raise ConfigError(
            f"invalid YAML ({getattr(err, 'problem', err)})", where=where, fix="fix the syntax"
        ) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("the top level must be a mapping", where=str(path), fix="write `key: value` lines")
    return data


def _merge(
    defaults: dict[str, Any], given: Mapping[str, Any], *, where: str, prefix: str = ""
) -> dict[str, Any]:
    out = copy.deepcopy(defaults)
    for key, value in given.items():
        dotted = f"{prefix}{key}"
        if key not in defaults:
            import difflib

            close = difflib.get_close_matches(str(key), list(defaults), n=1)
            raise ConfigError(
                f"unknown key {dotted!r}",
                where=f"{where}:{dotted}",
                fix=f"did you mean {prefix + close[0]!r}?"
                if close
                else f"known keys: {', '.join(prefix + k for k in defaults)}",
            )
        default = defaults[key]
        if dotted in FREE_FORM:
            if value is not None and not isinstance(value, dict):
                raise ConfigError(
                    f"{dotted!r} must be a mapping", where=f"{where}:{dotted}", fix="use `key: value`"
                )
            out[key] = dict(value or {})
        elif isinstance(default, dict):
            if not isinstance(value, dict):
                raise ConfigError(
                    f"{dotted!r} must be a mapping", where=f"{where}:{dotted}", fix="indent its keys below it"
                )
            out[key] = _merge(default, value, where=where, prefix=dotted + ".")
        else:
            out[key] = value
    return out


#: a board label becomes a directory name (samples/<label>/) and a table cell: letters, digits and
#: ``. _ + - @ ( ) [ ] ,`` and spaces, not starting with a dot, at most 80 characters
_LABEL_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._+\-@()\[\], ]{0,79}")


def _check_label(label: str, *, where: str) -> None:
    """Refuse a label that could name a path outside the run directory (``../../x``, ``a/b``), a
    hidden file, or carry control characters (ANSI escapes) into the terminal and file names."""
    if not _LABEL_RE.fullmatch(label) or label.strip() != label:
        raise ConfigError(
            f"explainer label {label!r} is not allowed (it names the samples/<label>/ directory)",
            where=where,
            fix="use letters, digits and . _ + - (no path separators, no leading dot, at most 80 characters)",
        )


def parse_set(pairs: list[str]) -> list[tuple[str, Any]]:
    """Parse ``--set a.b=value`` strings; the value is YAML (``2000`` -> int, ``[a, b]`` -> list)."""
    out = []
    for item in pairs:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"bad --set {item!r}", where="--set", fix="use --set key.sub=value")
        try:
            parsed = yaml.safe_load(value) if value.strip() else None
        except yaml.YAMLError as err:
            if value.lstrip()[:1] in "[{" or "!!" in value:  # meant as a list/mapping/tag: never a string
                raise ConfigError(
                    f"bad --set {item!r}: the value is not valid YAML ({getattr(err, 'problem', err)})",
                    where=f"--set {key.strip()}",
                    fix="quote it as YAML, e.g. --set 'explainers=[random, popularity]'",
                ) from None
            parsed = value
        out.append((key.strip(), parsed))
    return out


def _apply_set(raw: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node: Any = raw
    defaults: Any = SUITE_DEFAULTS
    for i, part in enumerate(parts):
        dotted = ".".join(parts[: i + 1])
        parent_free = ".".join(parts[:i]) in FREE_FORM
        if not parent_free and (not isinstance(defaults, dict) or part not in defaults):
            import difflib

            opts = list(defaults) if isinstance(defaults, dict) else []
            close = difflib.get_close_matches(part, opts, n=1)
            raise ConfigError(
                f"unknown key {dotted!r}",
                where=f"--set {key}",
                fix=f"did you mean {'.'.join(parts[:i] + [close[0]])!r}?"
                if close
                else "run `recxbench validate SUITE` to see the keys",
            )
        if i == len(parts) - 1:
            node[part] = value
        else:
            node = node.setdefault(part, {})
            defaults = defaults.get(part, {}) if isinstance(defaults, dict) and not parent_free else {}


def find_suite(name_or_path: str) -> Path:
    """A suite file: a path to a YAML file, else a built-in suite name (a directory of the same
    name in the working directory, e.g. a run directory ``quick/``, does not shadow the suite)."""
    p = Path(name_or_path)
    candidate = suites_dir() / f"{name_or_path}.yaml"
    if p.suffix in (".yaml", ".yml") or p.is_file():
        if not p.is_file():
            what = "is a directory, not a suite file" if p.is_dir() else "suite file not found"
            raise ConfigError(what, where=str(p), fix="pass a suite YAML file or a built-in suite name")
        return p
    if candidate.is_file():
        return candidate
    if p.is_dir():
        raise ConfigError(
            "is a directory, not a suite file",
            where=str(p),
            fix="pass a suite YAML file or a built-in suite name",
        )
    known = sorted(x.stem for x in suites_dir().glob("*.yaml"))
    import difflib

    close = difflib.get_close_matches(name_or_path, known, n=2)
    raise ConfigError(
        f"unknown suite {name_or_path!r}",
        fix=(f"did you mean {' or '.join(map(repr, close))}? " if close else "")
        + f"built-in suites: {', '.join(known)}; or pass a path to a suite YAML",
    )


def task_search_path(suite_path: Path, task_dirs: list[str]) -> list[Path]:
    dirs = [(suite_path.parent / d).resolve() for d in task_dirs]
    return [*dirs, tasks_dir()]  # suite's own directories first: they may override built-ins


def load_task(ref: str, search: list[Path], overrides: Mapping[str, Any], *, where: str) -> TaskSpec:
    from bench.registry import task_kinds

    p = Path(ref)
    if p.suffix in (".yaml", ".yml"):
        path = p if p.is_absolute() else (search[0].parent / p if search else p)
        if not path.exists():
            path = p
    else:
        path = next((d / f"{ref}.yaml" for d in search if (d / f"{ref}.yaml").exists()), None)  # type: ignore[assignment]
        if path is None:
            known = sorted({x.stem for d in search if d.exists() for x in d.glob("*.yaml")})
            import difflib

            close = difflib.get_close_matches(ref, known, n=2)
            raise ConfigError(
                f"unknown task {ref!r}",
                where=where,
                fix=(f"did you mean {' or '.join(map(repr, close))}? " if close else "")
                + f"known tasks: {', '.join(known)}",
            )
    data = _load_yaml(path)
    allowed = {"task", "kind", "version", "description", "params", "main_metric"}
    for key in data:
        if key not in allowed:
            raise ConfigError(
                f"unknown key {key!r}", where=f"{path}:{key}", fix=f"task keys: {', '.join(sorted(allowed))}"
            )
    for key in ("task", "kind", "main_metric"):
        if key not in data:
            raise ConfigError(f"missing key {key!r}", where=str(path), fix=f"add `{key}: ...`")
    kind = str(data["kind"])
    if kind not in task_kinds:
        raise ConfigError(f"unknown task kind {kind!r}", where=f"{path}:kind", fix=task_kinds.suggest(kind))
    params = dict(data.get("params") or {})
    params.update(dict(overrides or {}))
    spec = TaskSpec(
        name=str(data["task"]),
        kind=kind,
        version=int(data.get("version", 1)),
        description=str(data.get("description", "")).strip(),
        params=params,
        main_metric=str(data["main_metric"]),
        path=str(path),
    )
    return TaskSpec(
        **{**spec.__dict__, "sha256": stable_hash({k: v for k, v in spec.__dict__.items() if k != "path"})}
    )


def load_suite(name_or_path: str, *, overrides: list[str] | None = None) -> SuiteConfig:
    """Load, merge defaults, apply ``--set`` overrides, validate, and load the suite's tasks."""
    path = find_suite(name_or_path)
    data = _load_yaml(path)
    raw = _merge(SUITE_DEFAULTS, data, where=path.name)
    declared = _declared(raw)
    for key, value in parse_set(overrides or []):
        _apply_set(raw, key, value)
    raw = _merge(SUITE_DEFAULTS, raw, where="--set")  # re-validate types after overrides
    skipped = _drop_removed(raw, declared)
    raw["suite"] = raw["suite"] or path.stem
    validate_values(raw, path.name)

    search = task_search_path(path, list(raw["task_dirs"]))
    task_params = raw["task_params"]
    specs = []
    for i, ref in enumerate(raw["tasks"]):
        specs.append(
            load_task(str(ref), search, task_params.get(str(ref), {}), where=f"{path.name}:tasks[{i}]")
        )
    names = [s.name for s in specs]
    unknown_params = sorted(set(task_params) - set(names))
    if unknown_params:
        raise ConfigError(
            f"task_params for task(s) not in the suite: {', '.join(unknown_params)}",
            where=f"{path.name}:task_params",
            fix=f"suite tasks: {', '.join(names)}",
        )
    explainers = []
    for i, item in enumerate(raw["explainers"]):
        if isinstance(item, str):
            item = {"name": item}
        if not isinstance(item, dict) or "name" not in item:
            raise ConfigError(
                "an explainer needs a name",
                where=f"{path.name}:explainers[{i}]",
                fix="write `- name: random`",
            )
        extra = set(item) - {"name", "params", "label"}
        if extra:
            raise ConfigError(
                f"unknown key(s) {', '.join(sorted(extra))}",
                where=f"{path.name}:explainers[{i}]",
                fix="explainer entries take name, params, label",
            )
        explainers.append(
            ExplainerSpec(
                name=str(item["name"]),
                label=str(item.get("label") or item["name"]),
                params=dict(item.get("params") or {}),
            )
        )
    for i, e in enumerate(explainers):
        _check_label(e.label, where=f"{path.name}:explainers[{i}]")
    labels = [e.label for e in explainers]
    dupes = sorted({x for x in labels if labels.count(x) > 1})
    if dupes:
        raise ConfigError(
            f"duplicate explainer label(s) {dupes}",
            where=f"{path.name}:explainers",
            fix="give each a distinct `label`",
        )
    return build_suite(
        raw,
        path=str(path),
        tasks=tuple(specs),
        explainers=tuple(explainers),
        sha256=stable_hash(raw),
        skipped_claims=skipped,
    )


def _declared(raw: Mapping[str, Any]) -> tuple[set[str], set[str]]:
    """Explainer labels and task names as the suite file declares them (before ``--set``)."""
    labels = set()
    for item in raw.get("explainers") or []:
        if isinstance(item, str):
            labels.add(item)
        elif isinstance(item, dict) and "name" in item:
            labels.add(str(item.get("label") or item["name"]))
    return labels, {str(t) for t in raw.get("tasks") or []}


def _drop_removed(raw: dict[str, Any], declared: tuple[set[str], set[str]]) -> tuple[str, ...]:
    """Claims and task parameters that only an override made dangling are dropped, with a warning.

    ``--set explainers=[random,popularity]`` removes explainers the suite's claims may name, and
    ``--set tasks=[...]`` tasks its ``task_params`` configure. A claim whose explainers (or task) the
    file declares but the run no longer has is *not evaluated* (listed as such on the board); one that
    names something the file never declared stays an error (a typo), reported by ``check_claims``.
    """
    from bench.stats import parse_claim

    labels_now, tasks_now = _declared(raw)
    labels_file, tasks_file = declared
    kept, skipped = [], []
    for text in raw.get("claims") or []:
        try:
            c = parse_claim(str(text))
        except UserError:  # malformed claims are reported by check_claims
            kept.append(text)
            continue
        removed = [x for x in (c.a, c.b) if x not in labels_now and x in labels_file]
        task_removed = c.task not in tasks_now and c.task in tasks_file
        if removed or task_removed:
            what = f"explainer {removed[0]!r}" if removed else f"task {c.task!r}"
            log.warning("claim %r not evaluated: %s is not in this run", text, what)
            skipped.append(str(text))
        else:
            kept.append(text)
    raw["claims"] = kept
    params = raw.get("task_params") or {}
    for t in sorted(set(params) - tasks_now):
        if t in tasks_file:
            log.warning("task_params for %r ignored: the task is not in this run", t)
            del params[t]
    return tuple(skipped)
