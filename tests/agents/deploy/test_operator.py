"""agents.deploy.operator and agents.core.reverts: targets, accounts, deployment records, revert decoding."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from eth_abi.abi import encode
from eth_utils.crypto import keccak

from agents.core.errors import PermanentError
from agents.core.reverts import describe_revert, error_table
from agents.deploy.deployment import Deployed
from agents.deploy.operator import (
    DeploymentMissingError,
    Target,
    load_core,
    record,
    record_path,
    resolve_account,
    target_of,
)


def net(name: str, ecosystem: str = "ethereum") -> SimpleNamespace:
    return SimpleNamespace(name=name, ecosystem=SimpleNamespace(name=ecosystem))


def test_targets():
    embedded = target_of(net("local"), SimpleNamespace(name="test"), 1337)
    assert (embedded.choice, embedded.live, embedded.ephemeral) == ("ethereum:local", False, True)
    anvil = target_of(net("local"), SimpleNamespace(name="foundry"), 31337)
    assert not anvil.live and not anvil.ephemeral
    fork = target_of(net("sepolia-fork", "base"), SimpleNamespace(name="foundry"), 84532)
    assert not fork.live
    testnet = target_of(net("sepolia", "base"), SimpleNamespace(name="node"), 84532)
    assert testnet.live and testnet.choice == "base:sepolia"
    custom_dev = target_of(net("custom"), SimpleNamespace(name="node", uri="http://127.0.0.1:9"), 31337)
    assert custom_dev.choice == "http://127.0.0.1:9" and not custom_dev.live
    custom_live = target_of(net("custom"), SimpleNamespace(name="node", uri="https://rpc.example"), 8453)
    assert custom_live.live


def test_accounts_on_live_networks_must_be_named():
    accounts = SimpleNamespace(test_accounts=["t0", "t1"], load=lambda alias: f"loaded:{alias}")
    dev = Target("ethereum:local", 31337, live=False, ephemeral=False)
    live = Target("base:sepolia", 84532, live=True, ephemeral=False)
    assert resolve_account(accounts, None, dev) == "t0"
    assert resolve_account(accounts, "test:1", dev) == "t1"
    assert resolve_account(accounts, "ops", live) == "loaded:ops"
    with pytest.raises(PermanentError, match="--account ALIAS is required"):
        resolve_account(accounts, None, live)
    with pytest.raises(PermanentError, match="test accounts have public keys"):
        resolve_account(accounts, "test:0", live)

    def missing(alias: str) -> None:
        raise KeyError(f"No account with alias '{alias}'.")

    with pytest.raises(PermanentError, match="no ape account with alias 'nobody'"):
        resolve_account(SimpleNamespace(test_accounts=[], load=missing), "nobody", live)
    for bad in ("test:2", "test:x"):
        with pytest.raises(PermanentError, match="test:N with N below 2"):
            resolve_account(accounts, bad, dev)


def test_records_go_where_load_core_reads_them(tmp_path: Path):
    live = Target("base:sepolia", 84532, live=True, ephemeral=False)
    dev = Target("http://127.0.0.1:8545", 31337, live=False, ephemeral=False)
    assert record_path(tmp_path, live) == tmp_path / "deployments" / "base_sepolia.json"
    assert record_path(tmp_path, dev) == tmp_path / ".cache" / "deployments" / "http_127.0.0.1_8545.json"
    assert record(tmp_path, Target("ethereum:local", 1337, live=False, ephemeral=True), []) is None
    deployed = [Deployed("ModelRegistry", "0x" + "11" * 20, "0x" + "22" * 32, 1, 1)]
    path = record(tmp_path, dev, deployed)
    assert path is not None and json.loads(path.read_text())["chainId"] == 31337


def test_load_core_refusals(tmp_path: Path):
    dev = Target("ethereum:local", 31337, live=False, ephemeral=False)
    with pytest.raises(DeploymentMissingError, match="no proofmint deployment recorded for ethereum:local"):
        load_core(None, None, None, tmp_path, dev)
    path = record_path(tmp_path, dev)
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with pytest.raises(DeploymentMissingError, match="is not a deployment record"):
        load_core(None, None, None, tmp_path, dev)
    record(tmp_path, Target("ethereum:local", 1, live=False, ephemeral=False), [])
    with pytest.raises(DeploymentMissingError, match="is for chain 1 but ethereum:local is chain 31337"):
        load_core(None, None, None, tmp_path, dev)
    record(tmp_path, dev, [Deployed("ModelRegistry", "0x" + "11" * 20, "0x", 1, 1)])
    with pytest.raises(DeploymentMissingError, match="has no ProvenanceRegistry"):
        load_core(None, None, None, tmp_path, dev)


ABI = [
    {
        "type": "error",
        "name": "Thing__Bad",
        "inputs": [{"name": "who", "type": "address"}, {"name": "ids", "type": "bytes32[]"}],
    },
    {"type": "function", "name": "f", "inputs": []},
]


def test_describe_revert():
    table = error_table([ABI])
    data = keccak(text="Thing__Bad(address,bytes32[])")[:4] + encode(
        ["address", "bytes32[]"], ["0x" + "11" * 20, [b"\x22" * 32]]
    )
    assert describe_revert(data, table) == f"Thing__Bad(who=0x{'11' * 20}, ids=[0x{'22' * 32}])"
    error_string = keccak(text="Error(string)")[:4] + encode(["string"], ["nope"])
    assert describe_revert(error_string, table) == "Error('nope')"
    panic = keccak(text="Panic(uint256)")[:4] + encode(["uint256"], [0x11])
    assert describe_revert(panic, table) == "Panic(0x11)"
    assert "without data" in describe_revert(b"", table)
    assert describe_revert(b"\xde\xad\xbe\xef", table) == "unknown error 0xdeadbeef"
    truncated = keccak(text="Thing__Bad(address,bytes32[])")[:4] + b"\x00" * 3
    assert describe_revert(truncated, table).startswith("unknown error")
