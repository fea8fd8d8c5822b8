"""A local anvil for `proofmint up --network ethereum:local:foundry`, owned by this process.

ape-foundry would start anvil itself, in our process group: a terminal's Ctrl-C would then kill
the node at the same moment as it asks the agents to finish the batches in hand, which need the
node. So anvil is started here in a session of its own (the same command ape-foundry builds:
ape's test mnemonic, accounts and balances), ape connects to it as to a running node
(`APE_FOUNDRY_HOST`), and it is stopped only after the agents have stopped."""

from __future__ import annotations

import collections
import contextlib
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

from agents.core.errors import PermanentError

FOUNDRY = "ethereum:local:foundry"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def own_anvil(networks: Any, *, port: int | None = None, within_s: float = 30.0, tracing: bool = True) -> Iterator[str]:
    """Starts anvil as ape-foundry would, in its own session, on `port` (None: a free one);
    yields its URI (ape connects to it through `APE_FOUNDRY_HOST` while the context is open);
    stops it on the way out. The node is ours only once our anvil says it listens: a port that
    something else took in the meantime is an error, never a node to use. `tracing=False` drops
    the `--steps-tracing` ape-foundry adds (it records every EVM step for ape's traces, which
    no production node does, and slows big transactions: a benchmark's node goes without)."""
    provider = networks.get_provider_from_choice(FOUNDRY)
    command = [part for part in provider.build_command() if tracing or part != "--steps-tracing"]
    port = port or _free_port()
    command[command.index("--port") + 1] = str(port)
    try:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True, text=True
        )
    except OSError as exc:
        raise PermanentError(f"cannot start anvil ({command[0]}): {exc}; run `make setup`") from exc
    listening = threading.Event()
    said: collections.deque[str] = collections.deque(maxlen=20)

    def read() -> None:  # anvil's output: watched for its "Listening on", then drained
        assert process.stdout is not None
        for line in process.stdout:
            said.append(line.rstrip())
            if line.startswith("Listening on"):
                listening.set()

    threading.Thread(target=read, name="anvil-output", daemon=True).start()
    uri = f"http://127.0.0.1:{port}"
    before = os.environ.get("APE_FOUNDRY_HOST")
    try:
        deadline = time.monotonic() + within_s
        while not (listening.is_set() and _listening(port)):
            if process.poll() is not None:
                raise PermanentError(
                    f"anvil exited with {process.returncode} on port {port}: {' / '.join(list(said)[-3:])[-500:]}"
                )
            if time.monotonic() > deadline:
                raise PermanentError(f"anvil did not listen on {uri} within {within_s:.0f} s")
            time.sleep(0.05)
        os.environ["APE_FOUNDRY_HOST"] = uri
        yield uri
    finally:
        if before is None:
            os.environ.pop("APE_FOUNDRY_HOST", None)
        else:
            os.environ["APE_FOUNDRY_HOST"] = before
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
