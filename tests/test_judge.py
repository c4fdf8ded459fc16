"""Judges: grade parsing, the prompt, the cache, the local judge, and the HTTP judge against real
local servers (a real OpenAI-compatible server for the protocol, a fault injector for retries)."""

from __future__ import annotations

import contextlib
import http.server
import importlib.util
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from bench.judge import make_judge
from bench.judge.cache import CachedJudge, cache_key
from bench.judge.check import format_report, judge_check, load_examples
from bench.judge.openai_compat import JudgeUnavailable, OpenAICompatJudge
from bench.judge.prompt import GRADE_ANSWERS, JudgeItem, JudgeResult, canonical_prompt, parse_grade, render

ITEMS = [
    JudgeItem(("Star Wars", "Alien"), "Aliens", "Yes", "Yes: the user loves sci-fi such as Alien."),
    JudgeItem(("Fargo", "Heat"), "Babe", "No", "No, a talking-pig film does not fit crime fans."),
    JudgeItem(("Toy Story",), "Aladdin", "Yes", "Yes."),
]

# -- grade parsing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "grade"),
    [
        ("GRADE: 2", 2),
        ("Grade - 2", 2),
        ("grade=1", 1),
        ("**2**", 2),
        ("**Grade:** 3", 3),
        ("Rating: 3/3", 3),
        ("3", 3),
        (" 0.", 0),
        ("2/3", 2),
        ("I'd say level 2.", 2),
        ("Score: two", 2),
        ("The grade is 1 because the explanation is thin.", 1),
        ("GRADE: 2\nGRADE: 2", 2),
        ("Explanation is fine.\n\nGRADE: 3", 3),
        # rejected
        ("GRADE: 1 ... no wait, GRADE: 3", None),
        ("GRADE: 5", None),
        ("Grade: 2.5", None),
        ("The user watched 3 comedies.", None),
        ("", None),
        (None, None),
        ("Level 0 means wrong, level 3 means great.", None),
        ("- GRADE: 0 if the explanation argues for the opposite", None),  # the rubric echoed
        ("GRADE: 1 if it is thin.\nMy answer: GRADE: 2", 2),
        ("12", None),
    ],
)
def test_parse_grade(reply, grade):
    assert parse_grade(reply) == grade


def test_prompt_holds_the_case_and_the_rubric():
    text = render(ITEMS[1])
    for part in ("1. Fargo", "2. Heat", "Candidate movie: Babe", "decision: No", "talking-pig"):
        assert part in text
    assert "GRADE: n" in text and "long explanation is not better" in text
    assert "it says Yes when the recommender said No" in text
    assert canonical_prompt(ITEMS[1]).endswith(text)
    assert "(no explanation)" in render(JudgeItem((), "X", "Yes", "   "))
    with pytest.raises(ValueError):
        JudgeItem((), "X", "maybe", "")


# -- cache -----------------------------------------------------------------------------------------


class CountingJudge:
    """A stub judge: grade = len(explanation) % 4; fails on demand after ``fail_after`` items."""

    id = "stub"
    fingerprint = "v1"

    def __init__(self, fail_after: int | None = None) -> None:
        self.calls: list[int] = []
        self.fail_after = fail_after

    def grade(self, items: Sequence[JudgeItem]) -> list[JudgeResult]:
        done = sum(self.calls)
        if self.fail_after is not None and done + len(items) > self.fail_after:
            raise JudgeUnavailable("stub server went away")
        self.calls.append(len(items))
        return [JudgeResult(len(it.explanation) % 4, f"t:{it.explanation}") for it in items]


def test_cache_second_call_sends_nothing(tmp_path):
    inner = CountingJudge()
    judge = CachedJudge(inner, tmp_path, chunk=2)
    first = judge.grade(ITEMS)
    assert inner.calls == [2, 1] and not any(r.cached for r in first)
    again = CachedJudge(CountingJudge(), tmp_path)  # a new process: read back from disk
    second = again.grade(ITEMS)
    assert again.judge.calls == [] and all(r.cached for r in second)
    assert [r.grade for r in second] == [r.grade for r in first]
    assert [r.transcript for r in second] == [r.transcript for r in first]
    # One new explanation: only it is judged.
    extra = JudgeItem(("Fargo",), "Heat", "Yes", "Yes, another crime film.")
    judge.grade([*ITEMS, extra])
    assert inner.calls == [2, 1, 1]


def test_cache_key_depends_on_judge_and_prompt():
    a, b = CountingJudge(), CountingJudge()
    b.fingerprint = "v2"
    assert cache_key(a, ITEMS[0]) != cache_key(b, ITEMS[0])
    assert cache_key(a, ITEMS[0]) != cache_key(a, ITEMS[1])
    assert cache_key(a, ITEMS[0]) == cache_key(CountingJudge(), ITEMS[0])


def test_cache_keeps_results_of_a_judge_that_fails_midway(tmp_path):
    failing = CachedJudge(CountingJudge(fail_after=2), tmp_path, chunk=1)
    with pytest.raises(JudgeUnavailable):
        failing.grade(ITEMS)
    retry = CachedJudge(CountingJudge(), tmp_path, chunk=1)
    retry.grade(ITEMS)
    assert retry.judge.calls == [1]  # only the third item was left
    # A torn last line (a crash while writing) is skipped.
    with retry.path.open("a") as fh:
        fh.write('{"key": "abc", "gra')
    assert CachedJudge(CountingJudge(), tmp_path).grade(ITEMS)[0].cached


# -- local judge -----------------------------------------------------------------------------------


def _loglik_figures(transcript: str) -> list[float]:
    """The four log-likelihoods a log-likelihood judge printed, in grade order."""
    block = transcript.split("[log-likelihoods]\n", 1)[1].split("\n[chosen]", 1)[0]
    return [float(line.rsplit("= ", 1)[1]) for line in block.splitlines()]


def test_local_judge_loglik_on_tiny_random(tiny, monkeypatch):
    from llm_fixtures import one_thread

    from bench.judge.local import LocalJudge

    judge = LocalJudge("tiny-random", backbone=tiny, mode="loglik")
    with one_thread():
        results = judge.grade(ITEMS)
        for item, r in zip(ITEMS, results, strict=True):
            assert item.explanation in r.transcript and "[log-likelihoods]" in r.transcript
            assert all(f"log P({a!r})" in r.transcript for a in GRADE_ANSWERS)
            figures = _loglik_figures(r.transcript)
            # the grade is the most likely answer (the first on a tie), and the transcript says so
            assert r.grade == figures.index(max(figures))
            assert r.transcript.endswith(f"[chosen]\n{GRADE_ANSWERS[r.grade]}")
        assert [r.grade for r in judge.grade(ITEMS)] == [r.grade for r in results]  # deterministic
        assert judge.id == "local:tiny-random/loglik" and tiny.sha256 in judge.fingerprint
        generating = LocalJudge("tiny-random", backbone=tiny, mode="generate", max_new_tokens=4)
        (out,) = generating.grade(ITEMS[:1])
    prompt = judge.prompts(ITEMS[:1])[0]
    assert out.transcript.startswith(prompt)
    # an untrained model writes no grade: the reply is kept and the grade is unreadable (None)
    reply = out.transcript[len(prompt) :]
    assert out.grade == parse_grade(reply) is None
    # a reply that states a grade is read as that grade
    monkeypatch.setattr(
        "bench.llm.generation.generate", lambda backbone, prompts, **kw: [["GRADE: 2"] for _ in prompts]
    )
    assert [r.grade for r in generating.grade(ITEMS)] == [2, 2, 2]


def test_judge_check_metrics_with_a_stub():
    examples = load_examples()
    assert len(examples) == 24 and sorted({e.grade for e in examples}) == [0, 1, 2, 3]

    class Oracle:
        id, fingerprint = "oracle", ""

        def grade(self, items):
            gold = {e.item: e.grade for e in examples}
            return [JudgeResult(gold[it], "") for it in items]

    perfect = judge_check(Oracle(), examples)
    assert perfect["accuracy"] == 1.0 and perfect["kappa"] == 1.0 and perfect["kappa_quadratic"] == 1.0
    assert perfect["spearman"] == pytest.approx(1.0) and perfect["confusion"][2] == [0, 0, 6, 0]
    assert abs(perfect["length_spearman_gold"]) < 0.3  # length does not predict the gold grade

    class Silent:
        id, fingerprint = "silent", ""

        def grade(self, items):
            return [JudgeResult(None, "?") for _ in items]

    silent = judge_check(Silent(), examples)
    assert silent["parse_failures"] == 24 and silent["accuracy"] == 0.25 and silent["spearman"] is None
    assert silent["per_level_accuracy"]["0"] == 1.0 and silent["kappa"] == 0.0
    report = format_report(silent)
    assert "| accuracy (exact grade) | 0.250 |" in report and "n/a" in report


def test_make_judge_specs(monkeypatch):
    assert make_judge("tiny-random").id == "local:tiny-random/loglik"
    assert make_judge({"backbone": "x", "mode": "generate"}).id == "local:x/generate"
    http_judge = make_judge({"url": "http://127.0.0.1:9/v1", "model": "m", "concurrency": 2})
    assert http_judge.url == "http://127.0.0.1:9/v1/chat/completions" and http_judge.concurrency == 2
    from bench.errors import UserError

    for bad in ("http://127.0.0.1:9/v1", {"url": "http://x/v1"}, {"backbone": "x", "colour": 1}):
        with pytest.raises(UserError):
            make_judge(bad)
    with pytest.raises(UserError, match="RECX_TEST_KEY"):
        make_judge("http://127.0.0.1:9/v1", model="m", api_key_env="RECX_TEST_KEY")


# -- HTTP judge: retries and failures against a local fault-injecting server --------------------------


def _reply(content: str) -> bytes:
    return json.dumps(
        {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}
    ).encode()


class _Faults(http.server.BaseHTTPRequestHandler):
    """Answers POSTs from a script of actions: an int status, "close", "slow", or a reply text."""

    script: list[object] = []
    seen: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
        action = type(self).script.pop(0) if type(self).script else "GRADE: 1"
        if action == "close":  # drop the connection without answering
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if action == "slow":
            time.sleep(1.0)
            action = "GRADE: 1"
        if isinstance(action, int):
            self.send_response(action)
            if action == 429:
                self.send_header("Retry-After", "0.25")
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"error": {"message": "injected"}}')
            return
        payload = _reply(str(action))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:  # keep the test output clean
        pass


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that timed out leaves a broken pipe behind: expected, not worth a traceback


@pytest.fixture
def faults() -> Iterator[tuple[str, type[_Faults]]]:
    handler = type("Faults", (_Faults,), {"script": [], "seen": []})
    server = _QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", handler
    finally:
        server.shutdown()
        server.server_close()


def test_retries_with_exponential_backoff(faults):
    url, handler = faults
    handler.script = [500, "close", 503, "GRADE: 3"]
    sleeps: list[float] = []
    judge = OpenAICompatJudge(url, "m", backoff=0.5, max_retries=4, sleep=sleeps.append, concurrency=1)
    (res,) = judge.grade(ITEMS[:1])
    assert res.grade == 3 and sleeps == [0.5, 1.0, 2.0] and judge.requests_sent == 4
    body = handler.seen[-1]["body"]
    assert handler.seen[-1]["path"] == "/v1/chat/completions"
    assert body["temperature"] == 0 and body["model"] == "m" and body["max_tokens"] == 32
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert "[assistant]\nGRADE: 3" in res.transcript and ITEMS[0].explanation in res.transcript


def test_retry_after_and_timeouts(faults):
    url, handler = faults
    handler.script = [429, "slow", "GRADE: 2"]
    sleeps: list[float] = []
    judge = OpenAICompatJudge(url, "m", timeout=0.3, backoff=0.01, sleep=sleeps.append, concurrency=1)
    assert judge.grade(ITEMS[:1])[0].grade == 2
    assert sleeps == [0.25, 0.02]  # the server's Retry-After, then back-off 2^1 · 0.01


def test_gives_up_with_a_clear_error(faults):
    url, handler = faults
    handler.script = [500] * 10
    judge = OpenAICompatJudge(url, "m", max_retries=2, sleep=lambda s: None)
    with pytest.raises(JudgeUnavailable, match=r"failed 3 times; last error: HTTP 500") as err:
        judge.grade(ITEMS[:1])
    assert url in str(err.value) and "fix:" in str(err.value)
    assert len(handler.seen) == 3


def test_client_errors_are_not_retried_and_keys_stay_secret(faults, monkeypatch):
    url, handler = faults
    monkeypatch.setenv("RECX_TEST_KEY", "sk-secret-123")
    handler.script = [401]
    judge = OpenAICompatJudge(url, "m", api_key_env="RECX_TEST_KEY", sleep=lambda s: None)
    with pytest.raises(JudgeUnavailable, match="HTTP 401") as err:
        judge.grade(ITEMS[:1])
    assert len(handler.seen) == 1 and handler.seen[0]["auth"] == "Bearer sk-secret-123"
    assert "sk-secret" not in str(err.value)
    handler.script = ["no grade here", "GRADE: 0", "GRADE: 1"]
    results = judge.grade(ITEMS)  # concurrent requests, order preserved
    assert sorted(str(r.grade) for r in results) == ["0", "1", "None"]
    assert all("sk-secret" not in r.transcript for r in results)


def test_unreachable_server(monkeypatch):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    judge = OpenAICompatJudge(f"http://127.0.0.1:{port}/v1", "m", max_retries=1, sleep=lambda s: None)
    with pytest.raises(JudgeUnavailable, match=f"127.0.0.1:{port}.*failed 2 times"):
        judge.grade(ITEMS[:1])


# -- HTTP judge against a real OpenAI-compatible server -------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(url: str, proc: subprocess.Popen, *, limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as resp:
            if resp.status == 200:
                return
        time.sleep(0.5)
    raise RuntimeError(f"server not ready after {limit_s:.0f} s")


@contextlib.contextmanager
def _serving(cmd: list[str], ready_path: str, port: int, log_path: Path) -> Iterator[str]:
    """Run a server command, wait (bounded) until ``ready_path`` answers 200, yield the API root."""
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_DISABLE_UPDATE_CHECK": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    log = log_path.open("w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        try:
            _wait_ready(f"http://127.0.0.1:{port}{ready_path}", proc, limit_s=120)
        except RuntimeError as err:
            pytest.fail(f"{err}; log:\n{log_path.read_text()[-2000:]}")
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _check_real_server(judge: OpenAICompatJudge, cache_dir: Path) -> list[JudgeResult]:
    cached = CachedJudge(judge, cache_dir)
    results = cached.grade(ITEMS)
    assert len(results) == 3 and judge.requests_sent == 3
    for item, r in zip(ITEMS, results, strict=True):
        # a small model may reply with anything: the grade is what its reply parses to (None: unreadable)
        assert "[system]" in r.transcript and item.explanation in r.transcript
        assert "[assistant]\n" in r.transcript and "[note]" not in r.transcript
        assert r.grade == parse_grade(r.transcript.rsplit("[assistant]\n", 1)[1])
    assert [r.grade for r in cached.grade(ITEMS)] == [r.grade for r in results]
    assert judge.requests_sent == 3  # the second pass came from the cache
    return results


@pytest.mark.slow
def test_http_judge_against_transformers_serve(tiny, tmp_path):
    """``transformers serve`` (FastAPI + uvicorn, OpenAI-compatible) serving the tiny-random
    checkpoint on 127.0.0.1. Install: ``pip install "transformers[serving]"`` (seconds)."""
    if importlib.util.find_spec("fastapi") is None or importlib.util.find_spec("uvicorn") is None:
        pytest.skip('transformers serve needs its extras: pip install "transformers[serving]"')
    checkpoint = Path(tiny.info["checkpoint"])
    port = _free_port()
    cmd = [sys.executable, "-m", "transformers.cli.transformers", "serve", str(checkpoint)]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--device", "cpu", "--log-level", "error"]
    with _serving(cmd, "/health", port, tmp_path / "server.log") as url:
        judge = OpenAICompatJudge(url, str(checkpoint), max_tokens=8, timeout=60, concurrency=2)
        _check_real_server(judge, tmp_path / "cache")


@pytest.mark.slow
def test_http_judge_against_llama_cpp_server(tmp_path):
    """llama.cpp's server (``python -m llama_cpp.server``, from ``llama-cpp-python[server]``, which
    compiles llama.cpp on install) serving the SmolLM2-135M-Instruct GGUF on 127.0.0.1."""
    if importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("sse_starlette") is None:
        pytest.skip(
            'llama.cpp server not installed: pip install "llama-cpp-python[server]" (compiles, ~30 min)'
        )
    from bench.llm.smollm2 import smollm2_path

    gguf = smollm2_path()
    if not gguf.is_file():
        pytest.skip(
            f"SmolLM2 GGUF not in the cache ({gguf}); fetch it with bench.llm.smollm2.ensure_smollm2()"
        )
    port = _free_port()
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", "smollm2"]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--verbose", "false"]
    with _serving(cmd, "/v1/models", port, tmp_path / "server.log") as url:
        judge = OpenAICompatJudge(url, "smollm2", max_tokens=16, timeout=120, concurrency=1)
        results = _check_real_server(judge, tmp_path / "cache")
        assert all(r.transcript.rsplit("[assistant]\n", 1)[1].strip() for r in results)  # real text came back
