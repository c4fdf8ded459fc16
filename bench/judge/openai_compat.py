"""A judge behind any OpenAI-compatible ``/chat/completions`` endpoint (standard library only).

Works with hosted APIs and local servers alike (llama.cpp's ``llama-server``, ``transformers
serve``, vLLM, Ollama's ``/v1``): ``base_url`` is the API root that ``/chat/completions`` is
appended to, usually ending in ``/v1``.

Request: ``POST {base_url}/chat/completions`` with ``{"model", "messages", "temperature": 0,
"max_tokens"}``; the grade is read from ``choices[0].message.content`` by
:func:`~bench.judge.prompt.parse_grade`.

Failure policy. Connection errors, time-outs, HTTP 429 and 5xx are retried ``max_retries`` times
with exponential back-off (``backoff · 2^attempt`` seconds, or the server's ``Retry-After`` when it
gives one, capped at 60 s). Any other HTTP status (a bad key, an unknown model) is not retried.
When a request finally fails, :class:`JudgeUnavailable` (a :class:`~bench.errors.UserError`) names
the URL, the error and the fix; grades already obtained are kept by the cache
(:mod:`bench.judge.cache`). The API key is read from the environment variable named by
``api_key_env`` and is never logged or put in a transcript.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.errors import UserError
from bench.judge.prompt import PROMPT_VERSION, JudgeItem, JudgeResult, messages, parse_grade

log = logging.getLogger(__name__)

_MAX_SLEEP_S = 60.0


class JudgeUnavailable(UserError):
    """The judge's server could not be reached or kept failing; grades so far are cached."""


class _Retryable(Exception):
    """A failure worth retrying (connection, time-out, 429, 5xx)."""


def _retry_after(err: urllib.error.HTTPError) -> float | None:
    value = err.headers.get("Retry-After") if err.headers else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:  # an HTTP date: fall back to our own back-off
        return None


class OpenAICompatJudge:
    """Grades through an OpenAI-compatible chat API.

    Args:
        base_url: the API root, e.g. ``http://127.0.0.1:8080/v1``.
        model: the model name the server expects.
        api_key_env: name of the environment variable holding the API key (``None``: no key).
        timeout: seconds per request.
        max_retries: retries after the first attempt for retryable failures.
        backoff: base of the exponential back-off in seconds.
        max_tokens: reply budget per request.
        concurrency: requests in flight at once (a thread pool; 1 = sequential).
        sleep: the sleep function (injected by tests to record the back-off).
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 4,
        backoff: float = 1.0,
        max_tokens: int = 32,
        concurrency: int = 4,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise UserError(
                f"judge URL {base_url!r} is not an http(s) URL",
                fix="give the API root, e.g. http://127.0.0.1:8080/v1",
            )
        if max_retries < 0 or concurrency < 1 or timeout <= 0:
            raise ValueError("need max_retries ≥ 0, concurrency ≥ 1 and timeout > 0")
        self.base_url = base_url.rstrip("/")
        self.url = f"{self.base_url}/chat/completions"
        self.model = model
        self.api_key_env = api_key_env
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.backoff = float(backoff)
        self.max_tokens = int(max_tokens)
        self.concurrency = int(concurrency)
        self._sleep = sleep
        self.id = f"openai:{model}@{self.base_url}"
        self.fingerprint = f"max_tokens={self.max_tokens};temperature=0;prompt=v{PROMPT_VERSION}"
        #: how many HTTP requests were sent (tests check that the cache avoids them).
        self.requests_sent = 0
        self._lock = threading.Lock()
        if api_key_env and not os.environ.get(api_key_env):
            raise UserError(
                f"the judge's API key variable {api_key_env} is not set",
                fix=f"export {api_key_env}=... (the key is read from there, never from the suite file)",
            )

    # -- one request ------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key_env:
            headers["Authorization"] = f"Bearer {os.environ.get(self.api_key_env, '')}"
        return headers

    def _post_once(self, body: bytes) -> dict[str, Any]:
        req = urllib.request.Request(self.url, data=body, headers=self._headers(), method="POST")
        with self._lock:
            self.requests_sent += 1
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as err:
            detail = err.read(300).decode("utf-8", "replace").strip() if err.fp else ""
            if err.code == 429 or err.code >= 500:
                raise _Retryable(f"HTTP {err.code} {err.reason}", _retry_after(err)) from None
            raise JudgeUnavailable(
                f"judge server answered HTTP {err.code} {err.reason} at {self.url}: {detail[:200]}",
                fix="check the model name, the URL (the API root, usually ending in /v1) and the API key "
                f"variable {self.api_key_env or '(none given)'}",
            ) from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
            # URLError wraps refused connections and DNS errors; OSError covers resets and
            # TimeoutError (socket.timeout), raised while reading the reply.
            reason = getattr(err, "reason", err)
            raise _Retryable(f"{type(err).__name__}: {reason}", None) from None
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            raise JudgeUnavailable(
                f"judge server at {self.url} sent a reply that is not JSON: {raw[:200]!r}",
                fix="point the judge at an OpenAI-compatible API root (usually ending in /v1)",
            ) from None

    def _post(self, payload: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps(payload).encode("utf-8")
        last = ""
        for attempt in range(self.max_retries + 1):
            try:
                return self._post_once(body)
            except _Retryable as err:
                last, hint = err.args[0], err.args[1]
                if attempt == self.max_retries:
                    break
                wait = min(_MAX_SLEEP_S, hint if hint is not None else self.backoff * 2**attempt)
                log.warning(
                    "judge request to %s failed (%s); retry %d/%d in %.1f s",
                    self.url,
                    last,
                    attempt + 1,
                    self.max_retries,
                    wait,
                )
                self._sleep(wait)
        raise JudgeUnavailable(
            f"judge server at {self.url} failed {self.max_retries + 1} times; last error: {last}",
            fix="start the server (or check the URL and your network) and run again; "
            "grades obtained so far are kept in the judge cache (when one is used) and not asked again",
        )

    def _grade_one(self, item: JudgeItem) -> JudgeResult:
        msgs = messages(item)
        payload = {"model": self.model, "messages": msgs, "temperature": 0, "max_tokens": self.max_tokens}
        reply = self._post(payload)
        try:
            content = reply["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            content = None
        text = content if isinstance(content, str) else ""
        transcript = "\n\n".join(
            [*(f"[{m['role']}]\n{m['content']}" for m in msgs), f"[assistant]\n{text}"]
            + ([] if content is not None else [f"[note] no message content in reply: {str(reply)[:300]}"])
        )
        return JudgeResult(grade=parse_grade(text), transcript=transcript)

    # -- the Judge protocol -----------------------------------------------------------------------

    def grade(self, items: Sequence[JudgeItem]) -> list[JudgeResult]:
        """One result per item (requests run ``concurrency`` at a time; order is preserved)."""
        if self.concurrency == 1 or len(items) <= 1:
            return [self._grade_one(it) for it in items]
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="judge") as pool:
            return list(pool.map(self._grade_one, items))
