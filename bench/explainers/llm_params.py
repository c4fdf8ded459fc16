"""Parameters of the LLM explainers: defaults from ``tasks/explainers/llm.yaml``, merged with a suite's."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bench.errors import ConfigError


def load_defaults(*sections: str) -> dict[str, Any]:
    """Defaults of ``tasks/explainers/llm.yaml``: ``common`` then each section, later ones winning."""
    import yaml

    from bench.resources import tasks_dir

    data = yaml.safe_load((tasks_dir() / "explainers" / "llm.yaml").read_text(encoding="utf-8"))
    out = dict(data["common"])
    for section in sections:
        if section != "common":
            out.update(data[section])
    return out


def merge_params(name: str, defaults: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """``given`` over ``defaults``; unknown keys are errors, nested mappings merge one level deep."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in defaults.items()}
    for key, value in given.items():
        if key not in defaults:
            raise ConfigError(
                f"unknown parameter {key!r} for explainer {name!r}",
                where=f"explainers[{name}].params",
                fix=f"known parameters: {', '.join(sorted(defaults))} (tasks/explainers/llm.yaml)",
            )
        if isinstance(defaults[key], dict) and isinstance(value, dict):
            unknown = set(value) - set(defaults[key]) if key == "lora" else set()
            if unknown:
                raise ConfigError(
                    f"unknown parameter(s) {', '.join(sorted(unknown))} in {key}",
                    where=f"explainers[{name}].params.{key}",
                    fix=f"known: {', '.join(sorted(defaults[key]))}",
                )
            out[key] = {**defaults[key], **value}
        else:
            out[key] = value
    return out
