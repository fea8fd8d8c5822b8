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
