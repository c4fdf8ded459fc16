"""Prompt templates of the LLM explainers (``tasks/prompts/<name>.yaml``, Jinja2 text templates)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
import yaml
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from bench.errors import ConfigError
from bench.resources import tasks_dir


@dataclass(frozen=True)
class PromptSet:
    """Parsed templates: ``templates[kind]`` is a list of paraphrases (the first one evaluates)."""

    name: str
    path: str
    sha256: str
    templates: dict[str, tuple[jinja2.Template, ...]]
    answers: dict[str, str]

    def render(self, kind: str, variant: int = 0, **values: Any) -> str:
        if kind not in self.templates:
            raise ConfigError(
                f"no template for {kind!r}", where=self.path, fix=f"add a `{kind}:` list of templates"
            )
        pool = self.templates[kind]
        return pool[variant % len(pool)].render(**values).strip()

    def n_variants(self, kind: str) -> int:
        return len(self.templates.get(kind, ()))


class _SandboxedTemplate(jinja2.Template):
    """A template whose unsafe attribute access (``{{ x.__class__.__mro__ }}``) is a user error."""

    def render(self, *args: Any, **kwargs: Any) -> str:
        try:
            return super().render(*args, **kwargs)
        except SecurityError as err:
            raise ConfigError(
                f"prompt template refused by the sandbox ({err})",
                where=str(self.name or "prompt template"),
                fix="templates may only read the variables they are given (no attributes starting with _)",
            ) from None


class _Sandbox(ImmutableSandboxedEnvironment):
    template_class = _SandboxedTemplate


# prompt files are user-supplied: rendered in Jinja2's immutable sandbox, never with full Python access
_ENV = _Sandbox(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False)


@lru_cache(maxsize=8)
def load_prompts(name: str) -> PromptSet:
    path = Path(name) if name.endswith((".yaml", ".yml")) else tasks_dir() / "prompts" / f"{name}.yaml"
    if not path.exists():
        raise ConfigError(
            f"prompt set {name!r} not found", where=str(path), fix="use `alignment` or a path to a YAML file"
        )
    text = path.read_text(encoding="utf-8")
    data = yaml.safe_load(text) or {}
    templates: dict[str, tuple[jinja2.Template, ...]] = {}
    for key, value in data.items():
        if key in ("version", "answers"):
            continue
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(
                f"{key!r} must be a list of template strings",
                where=f"{path}:{key}",
                fix='write `- "..."` items',
            )
        try:
            templates[key] = tuple(_ENV.from_string(v) for v in value)
        except jinja2.TemplateSyntaxError as err:
            raise ConfigError(
                f"template syntax error ({err.message})", where=f"{path}:{key}", fix="fix the Jinja2 syntax"
            ) from None
    answers = {str(k): str(v) for k, v in (data.get("answers") or {}).items()}
    answers.setdefault("yes", "Yes")
    answers.setdefault("no", "No")
    answers.setdefault("separator", "; ")
    return PromptSet(
        name=name,
        path=str(path),
        sha256=hashlib.sha256(text.encode()).hexdigest(),
        templates=templates,
        answers=answers,
    )
