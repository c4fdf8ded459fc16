"""Judges that grade explanations on the four-level rubric, their cache, and their reliability check.

* :mod:`bench.judge.prompt` — the rubric prompt, the :class:`Judge` protocol, :func:`parse_grade`;
* :mod:`bench.judge.local` — :class:`LocalJudge` on a ``bench.llm`` backbone (log-likelihood or greedy);
* :mod:`bench.judge.openai_compat` — :class:`OpenAICompatJudge` for any ``/chat/completions`` server;
* :mod:`bench.judge.cache` — :class:`CachedJudge`, one judgement per (judge, prompt);
* :mod:`bench.judge.check` — agreement of a judge with a hand-graded set.

:func:`make_judge` builds a judge from a spec: a string is a local backbone spec (``smollm2-135m``,
``tiny-random``, a model directory, a ``.gguf``) or an ``http(s)://`` API root (then ``model=`` is
required); a mapping ``{url, model, api_key_env?, timeout?, max_retries?, concurrency?}`` is an
HTTP judge, and ``{backbone, mode?}`` a local one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from bench.errors import UserError
from bench.judge.prompt import Judge, JudgeItem, JudgeResult, parse_grade

__all__ = ["Judge", "JudgeItem", "JudgeResult", "make_judge", "parse_grade", "probe_http_judges"]

_HTTP_KEYS = {"url", "model", "api_key_env", "timeout", "max_retries", "backoff", "concurrency", "max_tokens"}
_LOCAL_KEYS = {"backbone", "mode", "max_new_tokens", "batch_size"}


def make_judge(
    spec: str | Mapping[str, Any],
    *,
    model: str | None = None,
    api_key_env: str | None = None,
    device: str = "auto",
    max_new_tokens: int = 48,
    mode: str = "loglik",
    titles: Sequence[str] | None = None,
    batch_size: int = 8,
    backbones: Any = None,
) -> Judge:
    """A judge from ``spec`` (see the module docstring).

    Args:
        spec: a backbone spec, an ``http(s)://`` API root, or a mapping.
        model: the model name for an HTTP judge given as a URL string.
        api_key_env: environment variable with the API key (HTTP judges).
        device: device of a local judge.
        max_new_tokens: reply budget (local ``generate`` mode, and HTTP ``max_tokens``).
        mode: a local judge's mode, ``"loglik"`` (default) or ``"generate"``.
        titles: catalog titles (only the ``tiny-random`` backbone needs them).
        batch_size: prompts per forward pass of a local judge.
        backbones: a loader with ``shared(spec, device=..., titles=...)`` (the run's): a local judge
            takes its backbone from it instead of loading its own copy.

    Raises:
        UserError: an HTTP judge without a model, or unknown mapping keys.
    """
    from bench.judge.local import MODES, LocalJudge
    from bench.judge.openai_compat import OpenAICompatJudge

    if isinstance(spec, Mapping):
        cfg = dict(spec)
        if "url" in cfg:
            unknown = sorted(set(cfg) - _HTTP_KEYS)
            if unknown or not cfg.get("model"):
                raise UserError(
                    f"bad HTTP judge {cfg!r}: "
                    + (f"unknown key(s) {', '.join(unknown)}" if unknown else "no model given"),
                    fix=f"use the keys {', '.join(sorted(_HTTP_KEYS))}; url and model are required",
                )
            return OpenAICompatJudge(
                cfg.pop("url"),
                cfg.pop("model"),
                max_tokens=int(cfg.pop("max_tokens", max_new_tokens)),
                **cfg,
            )
        unknown = sorted(set(cfg) - _LOCAL_KEYS)
        if unknown:
            raise UserError(
                f"bad judge {cfg!r}: unknown key(s) {', '.join(unknown)}",
                fix=f"a local judge takes {', '.join(sorted(_LOCAL_KEYS))}; an HTTP judge needs url and model",
            )
        spec = str(cfg.get("backbone", "smollm2-135m"))
        mode = str(cfg.get("mode", mode))
        max_new_tokens = int(cfg.get("max_new_tokens", max_new_tokens))
        batch_size = int(cfg.get("batch_size", batch_size))
    if spec.startswith(("http://", "https://")):
        if not model:
            raise UserError(
                f"judge URL {spec} given without a model name",
                fix="pass the model the server serves (e.g. --model NAME, or judge: {url: ..., model: ...})",
            )
        return OpenAICompatJudge(spec, model, api_key_env=api_key_env, max_tokens=max_new_tokens)
    if mode not in MODES:
        raise UserError(f"unknown judge mode {mode!r}", fix=f"use one of: {', '.join(MODES)}")
    return LocalJudge(
        spec,
        device=device,
        max_new_tokens=max_new_tokens,
        mode=mode,  # type: ignore[arg-type]
        batch_size=batch_size,
        titles=titles,
        loader=backbones,
    )


def probe_http_judges(specs: Iterable[Any]) -> None:
    """Ask every HTTP judge among ``specs`` (task ``judge`` parameters) once, before any training:
    a wrong URL, a stopped server or one that is not OpenAI-compatible is a one-line error now, not
    after hours. Local judge specs are skipped (loading them is the check)."""
    from bench.judge.openai_compat import OpenAICompatJudge

    seen: set[str] = set()
    for spec in specs:
        is_http = (isinstance(spec, Mapping) and "url" in spec) or (
            isinstance(spec, str) and spec.startswith(("http://", "https://"))
        )
        if not is_http or repr(spec) in seen:
            continue
        seen.add(repr(spec))
        judge = make_judge(spec)
        if isinstance(judge, OpenAICompatJudge):
            judge.probe()
