"""A decision-log receiver for the tests, speaking OPA's decision-log API: `POST /logs` with
`Content-Encoding: gzip` and `Content-Type: application/json`, a JSON array of events. It
checks both headers, gunzips, keeps the events, and can answer 500 or hang on demand. A test
fixture, not part of the product."""

from __future__ import annotations

import gzip
import http.server
import json
import threading
import time

from harness import free_port


class LogReceiver:
    def __init__(self, path: str = "/logs"):
        self.port = free_port()
        self.path = path
        # "ok", "fail" (500) or "hang" (no answer until stopped or `hang_seconds`).
        self.mode = "ok"
        self.hang_seconds = 30.0
        self.events: list[dict] = []
        self.posts = 0
        self.refused: list[str] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with receiver.lock:
                    receiver.posts += 1
                    mode = receiver.mode
                if mode == "hang":
                    time.sleep(receiver.hang_seconds)
                if mode in ("fail", "hang"):
                    return self.answer(500, b"failing on purpose\n")
                problem, events = receiver.check(self.path, self.headers, body)
                if problem:
                    with receiver.lock:
                        receiver.refused.append(problem)
                    return self.answer(400, problem.encode())
                with receiver.lock:
                    receiver.events.extend(events)
                self.answer(200, b"")

            def answer(self, status: int, body: bytes):
                self.send_response(status)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True

    def check(self, path: str, headers, body: bytes) -> tuple[str | None, list]:
        """What is wrong with an upload (None if nothing), and its events."""
        if path != self.path:
            return f"unexpected path {path}", []
        if headers.get("content-encoding") != "gzip":
            return f"content-encoding {headers.get('content-encoding')!r}, not gzip", []
        if headers.get("content-type") != "application/json":
            return f"content-type {headers.get('content-type')!r}, not application/json", []
        try:
            events = json.loads(gzip.decompress(body))
        except (OSError, ValueError) as e:
            return f"body is not gzip JSON: {e}", []
        if not isinstance(events, list):
            return "body is not a JSON array", []
        return None, events

    def start(self) -> "LogReceiver":
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def received(self) -> list[dict]:
        with self.lock:
            return list(self.events)

    def wait_for(self, count: int, timeout: float = 30) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            events = self.received()
            if len(events) >= count:
                return events
            time.sleep(0.1)
        raise AssertionError(f"{len(self.received())} events received, expected {count}; refused: {self.refused}")
