"""An OpenAI-compatible completions server on loopback, for tests: real HTTP on 127.0.0.1.

It answers `POST /v1/completions` with deterministic texts (a function of prompt, seed and choice
index, with a `usage` that counts words as tokens) and can misbehave the ways real servers do:
ignore `n` (as `transformers serve` does), fail prompts that contain a marker with HTTP 500, answer
others with garbage, or answer slowly. Every request is recorded (prompt, n, seed, whether the
expected key came with it).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Request:
    prompt: str
    n: int
    seed: int | None
    authorised: bool


@dataclass
class CompletionServer:
    """Use as a context manager; `base_url` ends in /v1 like vLLM's."""

    api_key: str
    model: str | None = None  # the one model it serves (any name when None), like a pinned server
    ignore_n: bool = False
    fail_marker: str | None = None  # prompts containing it get HTTP 500, every time
    garbage_marker: str | None = None  # prompts containing it get a 200 that is not JSON
    delay: float = 0.0
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"server_state": self})
        self._httpd = _Server(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> CompletionServer:
        threading.Thread(target=self._httpd.serve_forever, name="openai-server", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # the default backlog of 5 drops concurrent connects (1 s SYN retries)


def text_for(prompt: str, seed: int | None, index: int) -> str:
    digest = hashlib.sha256(f"{prompt}|{seed}|{index}".encode()).hexdigest()
    return f" go to room {int(digest[:6], 16) % 40}"


class _Handler(BaseHTTPRequestHandler):
    server_state: CompletionServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """No access log on stderr."""

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        state = self.server_state
        prompt, n, seed = body["prompt"], int(body.get("n") or 1), body.get("seed")
        authorised = self.headers.get("Authorization") == f"Bearer {state.api_key}"
        state.record(Request(prompt, n, seed, authorised))
        if state.delay:
            time.sleep(state.delay)
        if self.path != "/v1/completions":
            return self._send(404, b'{"error": {"message": "no such route"}}')
        if state.model is not None and body["model"] != state.model:
            return self._send(400, json.dumps({"detail": f"serving {state.model!r} only"}).encode())
        if state.fail_marker and state.fail_marker in prompt:
            return self._send(500, b'{"error": {"message": "internal error", "type": "server_error"}}')
        if state.garbage_marker and state.garbage_marker in prompt:
            return self._send(200, b"<html>upstream timed out</html>")
        count = 1 if state.ignore_n else n
        choices = [
            {"index": i, "text": text_for(prompt, seed, i), "finish_reason": "stop", "logprobs": None}
            for i in range(count)
        ]
        answer = {
            "id": "cmpl-test",
            "object": "text_completion",
            "created": 0,
            "model": body["model"],
            "choices": choices,
            "usage": {  # words for tokens: deterministic, and enough to account with
                "prompt_tokens": len(prompt.split()),
                "completion_tokens": sum(len(c["text"].split()) for c in choices),
                "total_tokens": len(prompt.split()) + sum(len(c["text"].split()) for c in choices),
            },
        }
        self._send(200, json.dumps(answer).encode())

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
