"""A JSON-RPC proxy that injects the faults real nodes and gateways produce (HTTP 429 and 502,
a hang past the client's timeout, a garbage body, a dropped connection) before forwarding to a
real node. Faults are consumed one per request, in order; after them every request goes through."""

from __future__ import annotations

import threading
import time
import urllib.request
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FaultyProxy:
    def __init__(self, upstream: str, hang: float = 1.5) -> None:
        self.upstream, self.hang = upstream, hang
        self.faults: deque[str] = deque()
        self.always: str | None = None
        self.requests = 0
        self.injected = 0
        self._lock = threading.Lock()

    def next_fault(self) -> str | None:
        with self._lock:
            self.requests += 1
            fault = self.always or (self.faults.popleft() if self.faults else None)
            if fault:
                self.injected += 1
            return fault


@contextmanager
def faulty_proxy(upstream: str) -> Iterator[tuple[str, FaultyProxy]]:
    proxy = FaultyProxy(upstream)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: object) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            fault = proxy.next_fault()
            if fault in ("429", "502"):
                self.send_response(int(fault))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if fault == "hang":
                time.sleep(proxy.hang)
                return
            if fault == "garbage":
                payload = b"<html>upstream error</html>"
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
            if fault == "reset":
                self.close_connection = True
                self.connection.close()
                return
            request = urllib.request.Request(proxy.upstream, body, {"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=30) as answer:
                payload = answer.read()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", proxy
    finally:
        server.shutdown()
        server.server_close()
