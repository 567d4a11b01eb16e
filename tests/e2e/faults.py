"""A bundle server on loopback that misbehaves on demand (tests/e2e/test_faults.py): each
request is answered as `mode` says at that moment. Raw sockets, so it can reset a connection,
cut a body or lie about its length, which a well-behaved HTTP server library will not do."""

from __future__ import annotations

import hashlib
import socket
import struct
import threading
import time

MODES = ("good", "good-no-etag", "slow", "reset", "cut", "long-length", "not-modified", "flap")


class FaultyBundleServer:
    def __init__(self, good: bytes, bad: bytes, slow_seconds: float = 3.0):
        self.good, self.bad = good, bad
        self.slow_seconds = slow_seconds
        self.mode = "good"
        self.served: list[tuple[str, str]] = []  # (mode, what was sent)
        self._flap = 0
        self._lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self._stopped = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def start(self) -> "FaultyBundleServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self.sock.close()

    def requests(self, mode: str | None = None) -> int:
        with self._lock:
            return sum(1 for m, _ in self.served if mode is None or m == mode)

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    @staticmethod
    def _etag(body: bytes) -> str:
        return '"' + hashlib.sha256(body).hexdigest()[:16] + '"'

    def _serve(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(10)
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                head += chunk
            headers = {}
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.decode(errors="replace").partition(":")
                headers[name.strip().lower()] = value.strip()
            mode = self.mode
            with self._lock:
                if mode == "flap":
                    self._flap += 1
                    sent = "good" if self._flap % 2 else "bad"
                else:
                    sent = mode
                self.served.append((mode, sent))
            self._answer(conn, mode, sent, headers.get("if-none-match"))
        except OSError:
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def _send(self, conn: socket.socket, status: str, headers: dict[str, str], body: bytes = b"") -> None:
        lines = [f"HTTP/1.1 {status}", "connection: close", *(f"{k}: {v}" for k, v in headers.items())]
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)

    def _answer(self, conn: socket.socket, mode: str, sent: str, if_none_match: str | None) -> None:
        body, etag = self.good, self._etag(self.good)
        gzip = {"content-type": "application/gzip"}
        if mode == "slow":
            time.sleep(self.slow_seconds)
        if mode in ("good", "slow") or sent == "good":
            if if_none_match == etag:
                self._send(conn, "304 Not Modified", {"etag": etag})
            else:
                self._send(conn, "200 OK", {**gzip, "etag": etag, "content-length": str(len(body))}, body)
        elif sent == "bad":
            self._send(conn, "200 OK", {**gzip, "etag": self._etag(self.bad), "content-length": str(len(self.bad))},
                       self.bad)
        elif mode == "good-no-etag":
            self._send(conn, "200 OK", {**gzip, "content-length": str(len(body))}, body)
        elif mode == "reset":
            # SO_LINGER with a zero timeout: close() sends RST instead of FIN.
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif mode == "cut":
            self._send(conn, "200 OK", {**gzip, "etag": etag, "content-length": str(len(body))},
                       body[: len(body) // 2])
        elif mode == "long-length":
            self._send(conn, "200 OK", {**gzip, "etag": etag, "content-length": str(len(body) + 4096)}, body)
        elif mode == "not-modified":
            self._send(conn, "304 Not Modified", {})
        else:
            raise AssertionError(f"unknown mode {mode}")
