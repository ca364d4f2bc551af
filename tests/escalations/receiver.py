"""A tiny webhook receiver for tests: a threading HTTP server on 127.0.0.1 that records every
request and answers from a script (status codes, a hang, a trickle, a redirect, a huge body)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    port: int
    # Each request takes the next answer; the last one repeats. An answer is a status code,
    # or ("hang",), ("trickle",), ("redirect", location), ("big", status, size).
    script: list[Any] = field(default_factory=lambda: [200])
    requests: list[Received] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def next_answer(self) -> Any:
        return self.script.pop(0) if len(self.script) > 1 else self.script[0]


@contextmanager
def receiver(script: list[Any] | None = None) -> Iterator[Receiver]:
    state: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def do_POST(self) -> None:
            rec = state["r"]
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            rec.requests.append(Received("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            answer = rec.next_answer()
            if isinstance(answer, int):
                self._reply(answer, b'{"ok": true}')
            elif answer[0] == "hang":
                rec.stop.wait(30)  # never answers while the test waits
            elif answer[0] == "trickle":
                # A byte of the status line every 0.2 s: each read gets something well inside any
                # per-operation timeout, so only a total deadline ends it.
                for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 10_000:
                    if rec.stop.wait(0.2):
                        break
                    try:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                    except OSError:
                        break
            elif answer[0] == "redirect":
                self.send_response(302)
                self.send_header("Location", answer[1])
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif answer[0] == "big":
                self._reply(answer[1], b"x" * answer[2])

        def _reply(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            # The client may stop reading (it reads 4 KB at most).
            with contextlib.suppress(OSError):
                self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    port = server.server_address[1]
    state["r"] = Receiver(url=f"http://127.0.0.1:{port}/hooks/decisions", port=port, script=list(script or [200]))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state["r"]
    finally:
        state["r"].stop.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


def wait_for(predicate: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()
