"""A local OpenAI-compatible judge server for the reliability tests (``http.server`` in a thread).

The first path segment picks the behaviour, so one server serves every case:
``http://127.0.0.1:PORT/<mode>/v1/chat/completions`` with ``mode`` one of

* ``ok`` — always ``GRADE: 2``;
* ``500`` — always HTTP 500; ``401`` — always HTTP 401 (not retried);
* ``hang`` — sleeps ``HANG_S`` before answering (past the client's time-out);
* ``garbage`` — HTTP 200 with a body that is not JSON; ``nocontent`` — JSON without ``choices``;
* ``flaky`` — per distinct prompt, on a schedule fixed by its sha256 (so the outcome does not
  depend on thread order): a share of prompts always fails (500, hang or garbage in turn), the
  rest fail on the first attempt and answer on the next, a few answer an out-of-range grade;
  the pre-run probe is always answered, and everything once ``server.healed`` is set.

``server.requests`` counts requests per mode; ``server.prompts`` the requests per prompt.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HANG_S = 1.5


def _reply(content: str) -> bytes:
    return json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode()


def flaky_plan(digest: str, attempt: int) -> str:
    """What ``flaky`` does for the ``attempt``-th (1-based) request of the prompt with ``digest``."""
    h = int(digest[:8], 16)
    if h % 5 == 0:  # never answers: 500, hang, garbage in turn
        return ("500", "hang", "garbage")[attempt % 3]
    if h % 7 == 0:
        return "GRADE: 7"  # out of range: a reply without a readable grade
    if attempt == 1:
        return ("500", "garbage", "hang")[h % 3]
    return f"GRADE: {h % 4}"


class _Handler(BaseHTTPRequestHandler):
    server: FlakyJudgeServer

    def log_message(self, *args: object) -> None:  # keep the test output clean
        pass

    def _send(self, code: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(OSError):  # the client gave up (time-out) first
            self.wfile.write(body)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        mode = self.path.strip("/").split("/")[0]
        digest = hashlib.sha256(body).hexdigest()
        with self.server.lock:
            self.server.requests[mode] += 1
            self.server.prompts[digest] += 1
            attempt = self.server.prompts[digest]
        action = flaky_plan(digest, attempt) if mode == "flaky" else mode
        if mode == "flaky" and (self.server.healed or b"Reply with: GRADE: 3" in body):
            action = "GRADE: 1"  # the pre-run probe, or a server back to health
        if action == "ok":
            action = "GRADE: 2"
        if action in ("500", "401"):
            self._send(int(action), b'{"error": "scheduled failure"}')
        elif action == "hang":
            time.sleep(HANG_S)
            self._send(200, _reply("GRADE: 1"))
        elif action == "garbage":
            self._send(200, b"<html>502 Bad Gateway</html>", "text/html")
        elif action == "nocontent":
            self._send(200, b'{"object": "list", "data": []}')
        else:
            self._send(200, _reply(action))


class FlakyJudgeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.requests: Counter[str] = Counter()
        self.prompts: Counter[str] = Counter()
        #: once set, ``flaky`` answers every request
        self.healed = False
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    def url(self, mode: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{mode}/v1"

    def close(self) -> None:
        self.shutdown()
        self.server_close()


_SHARED: FlakyJudgeServer | None = None


def shared_server() -> FlakyJudgeServer:
    """One server for the whole test session (started on first use)."""
    global _SHARED
    if _SHARED is None:
        _SHARED = FlakyJudgeServer()
    return _SHARED
