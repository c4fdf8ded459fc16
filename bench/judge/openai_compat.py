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
A reply that is not JSON (a proxy's error page, a truncated body) is retried like a 5xx.
When the request for one explanation finally fails, that explanation is returned *ungraded*
(``JudgeResult.ungraded``, never cached, so a rerun asks only for these); when no request of a
``grade`` call succeeded and none ever did, the server is taken as down and :class:`JudgeUnavailable`
(a :class:`~bench.errors.UserError`, exit 2) names the URL, the error and the fix — grades already
obtained are kept by the cache (:mod:`bench.judge.cache`). :meth:`OpenAICompatJudge.probe` asks once
before a run starts, so a wrong URL or a stopped server stops the run before any training. The API key is read from the environment variable named by
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


class _GaveUp(JudgeUnavailable):
    """The bounded retries of one request are spent (the explanation stays ungraded)."""


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
        #: how many requests got a reply (an ungraded-only first batch with none means "down")
        self.answered = 0
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
            reply = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise _Retryable(f"reply is not JSON: {raw[:80]!r}", None) from None
        if not isinstance(reply, dict):
            raise _Retryable(f"reply is not a JSON object: {raw[:80]!r}", None)
        return reply

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
        raise _GaveUp(
            f"judge server at {self.url} failed {self.max_retries + 1} times; last error: {last}",
            fix="start the server (or check the URL and your network) and run again; "
            "grades obtained so far are kept in the judge cache (when one is used) and not asked again",
        )

    def probe(self) -> None:
        """Ask the server once (with the usual retries) before a run; raises :class:`JudgeUnavailable`
        when it cannot be reached or its reply is not a chat completion."""
        payload = {
            "model": self.model,
            "messages": [{"role": "user", "content": "Reply with: GRADE: 3"}],
            "temperature": 0,
            "max_tokens": self.max_tokens,
        }
        reply = self._post(payload)
        try:
            content = reply["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            content = None
        if not isinstance(content, str):
            raise JudgeUnavailable(
                f"judge server at {self.url} answered without choices[0].message.content: {str(reply)[:160]}",
                fix="point the judge at an OpenAI-compatible API root (usually ending in /v1)",
            )

    def _grade_one(self, item: JudgeItem) -> JudgeResult:
        msgs = messages(item)
        payload = {"model": self.model, "messages": msgs, "temperature": 0, "max_tokens": self.max_tokens}
        try:
            reply = self._post(payload)
        except _GaveUp as err:
            return JudgeResult(grade=None, transcript=f"[ungraded] {err.what}", ungraded=True)
        with self._lock:
            self.answered += 1
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
            out = [self._grade_one(it) for it in items]
        else:
            with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="judge") as pool:
                out = list(pool.map(self._grade_one, items))
        if out and self.answered == 0 and all(r.ungraded for r in out):
            # not one answer ever: the server is down or misconfigured, not flaky
            raise JudgeUnavailable(
                out[0].transcript.removeprefix("[ungraded] "),
                fix="start the server (or check the URL and your network) and run again; "
                "grades obtained so far are kept in the judge cache and not asked again",
            )
        return out
