"""A real, throwaway PostgreSQL server for the tests and benchmarks (Debian's `postgresql`
package, which `make setup-tests` installs): initdb into a fresh folder, `postgres` on a free
loopback port, a fresh database per test. PostgreSQL refuses to run as root, so as root the
server runs as the `postgres` user.

The server trades durability for speed (fsync off): the tests kill clients, never the server.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.agents.runtime.anvil import free_port


def _bindir() -> Path:
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if not versions:
        raise RuntimeError("PostgreSQL's initdb not found: make setup-tests installs Debian's postgresql package")
    return versions[-1].parent


class PostgresServer:
    """`start()` → the admin URL; `database()` → the URL of a new, empty database."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="proofmint-pg-"))
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._run_as: dict[str, Any] = {}
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.folder, user.pw_uid, user.pw_gid)
            self._run_as = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self, *, timeout_s: float = 60.0) -> str:
        bindir, data = _bindir(), self.folder / "data"
        subprocess.run(
            [bindir / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            **self._run_as,
        )
        settings = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.folder),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "300",
            "shared_buffers": "128MB",
        }
        options = [item for name, value in settings.items() for item in ("-c", f"{name}={value}")]
        log = (self.folder / "server.log").open("wb")
        self.process = subprocess.Popen(
            [bindir / "postgres", "-D", data, "-p", str(self.port), *options],
            stdout=log,
            stderr=subprocess.STDOUT,
            **self._run_as,
        )
        deadline = time.monotonic() + timeout_s
        import psycopg

        while True:
            try:
                with psycopg.connect(self.url, connect_timeout=2):
                    return self.url
            except psycopg.OperationalError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    tail = (self.folder / "server.log").read_text(errors="replace")[-2_000:]
                    raise RuntimeError(f"postgres did not start:\n{tail}") from None
                time.sleep(0.05)

    def database(self) -> str:
        import psycopg

        name = f"t_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(self.url, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # fast shutdown: open sessions are ended
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.stop()
