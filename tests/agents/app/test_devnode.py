"""`proofmint up`'s own anvil (agents/app/devnode.py): the node it uses is the one it started."""

from __future__ import annotations

import socket

import pytest

from agents.app.devnode import own_anvil
from agents.core.errors import PermanentError


def test_a_port_someone_else_took_is_an_error_not_a_node_to_use():
    from ape import networks

    with socket.socket() as squatter:  # takes the port between up's check and anvil's start
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        refused = pytest.raises(PermanentError, match=f"anvil exited with .* on port {port}")
        with refused, own_anvil(networks, port=port):
            pytest.fail("yielded a node on a port anvil never held")


def test_its_own_anvil_answers_and_goes_with_it():
    import json
    import urllib.request

    from ape import networks

    with own_anvil(networks) as uri:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).encode()
        request = urllib.request.Request(uri, data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert int(json.loads(answer.read())["result"], 16) == 31337
    with pytest.raises(OSError):
        urllib.request.urlopen(urllib.request.Request(uri, data=body), timeout=2)


def anvil_commands(port: int) -> list[list[str]]:
    """The command lines of the anvil processes listening on `port` (from /proc)."""
    from pathlib import Path

    found = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [a.decode(errors="replace") for a in argv if a]
        if words and words[0].endswith("anvil") and "--port" in words and words[words.index("--port") + 1] == str(port):
            found.append(words)
    return found


@pytest.mark.parametrize("tracing", [True, False])
def test_a_benchmarks_anvil_runs_without_step_tracing(tracing: bool):
    from ape import networks

    with own_anvil(networks, tracing=tracing) as uri:
        port = int(uri.rsplit(":", 1)[1])
        (command,) = anvil_commands(port)
        assert ("--steps-tracing" in command) is tracing
        assert "--mnemonic" in command and "--balance" in command  # otherwise as ape-foundry starts it
