"""agents.deploy.deployment: deploying the core contracts and recording live deployments."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agents.deploy.deployment import CORE_CONTRACTS, Deployed, deploy_core, format_table, is_live, record_deployment

pytestmark = pytest.mark.chain


def test_deploy_core_deploys_every_contract_with_real_receipts(project, chain, deployer):
    deployed = deploy_core(project, deployer, chain)
    assert [d.name for d in deployed] == list(CORE_CONTRACTS)
    for d in deployed:
        assert len(chain.provider.get_code(d.address)) > 0
        receipt = chain.get_receipt(d.txn_hash)
        assert receipt.gas_used == d.gas_used > 21_000
        assert receipt.block_number == d.block_number
    registry = project.ModelRegistry.at(deployed[0].address)
    assert registry.modelCount() == 0


def test_is_live():
    assert not is_live("local")
    assert is_live("sepolia")
    assert is_live("mainnet")


def test_record_deployment_writes_json_atomically(tmp_path: Path):
    deployed = [Deployed("ModelRegistry", "0x" + "11" * 20, "0x" + "22" * 32, 967_581, 7)]
    target = tmp_path / "deployments" / "base_sepolia.json"
    path = record_deployment(target, "base:sepolia", 84532, deployed)
    assert path == target
    data = json.loads(path.read_text())
    assert data["chainId"] == 84532
    assert data["contracts"][0]["gas_used"] == 967_581
    assert not list((tmp_path / "deployments").glob("*.tmp"))


def test_format_table_totals_gas():
    deployed = [Deployed("A", "0xa", "0x1", 1_000, 1), Deployed("Bee", "0xb", "0x2", 2_500, 1)]
    table = format_table(deployed)
    assert "3,500" in table.splitlines()[-1]
    assert "Bee" in table
