"""A private anvil node per test: real mempool behaviour (mining off, dropped transactions)."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
ANVIL = ROOT / "node_modules" / ".bin" / "anvil"
#: anvil's first default account (its well-known test mnemonic); worthless anywhere else.
KEY_0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
KEY_1 = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def private_anvil() -> Iterator[tuple[str, Any]]:
    """(RPC URL, synchronous Web3) of a fresh anvil (chain id 31337, automine on)."""
    from web3 import HTTPProvider, Web3

    port = free_port()
    process = subprocess.Popen(
        [str(ANVIL), "--port", str(port), "--silent", "--base-fee", "1000000000"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    web3 = Web3(HTTPProvider(url, request_kwargs={"timeout": 10}))
    deadline = time.monotonic() + 30
    while True:
        try:
            if web3.is_connected():
                break
        except Exception:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("anvil did not start")
        time.sleep(0.05)
    try:
        yield url, web3
    finally:
        process.terminate()
        process.wait(timeout=10)
