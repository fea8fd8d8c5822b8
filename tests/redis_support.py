"""A real, throwaway Redis server for the tests and benchmarks (Debian's `redis-server`, which
`make setup` installs): on a free loopback port, nothing saved, answering before it is handed out."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from tests.agents.runtime.anvil import free_port


@contextlib.contextmanager
def redis_server(folder: Path, *, timeout_s: float = 20.0) -> Iterator[str]:
    """`redis://127.0.0.1:PORT` of a server running in `folder` until the context ends (append a
    database number: `/0`)."""
    server = shutil.which("redis-server")
    assert server is not None, "redis-server is part of the toolchain (make setup installs it)"
    port = free_port()
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)
