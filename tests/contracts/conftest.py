"""Contract fixtures. The core deployment and its model version are made once per test module,
before the module's first test (`_module_deployment`): ape's isolation snapshots the chain after
the module-scoped fixtures and reverts it after each test, so every test starts from the same
fresh deployment and state never leaks between tests. (A module-scoped fixture first requested
by a later test would make ape rebase its snapshots; every module-scoped fixture here is
requested before the first test.)"""

from __future__ import annotations

import pytest

from agents.deploy.deployment import CoreConfig, deploy_core
from agents.deploy.operator import CoreContracts
from tests.contracts.helpers import SERVICE, asset_record, register_asset, register_model


@pytest.fixture
def model_registry(project, deployer):  # type: ignore[no-untyped-def]
    return deployer.deploy(project.ModelRegistry)


@pytest.fixture(scope="session")
def treasury(accounts):  # type: ignore[no-untyped-def]
    return accounts[8]


@pytest.fixture(scope="session")
def creator(accounts):  # type: ignore[no-untyped-def]
    return accounts[3]


@pytest.fixture(scope="session")
def other_creator(accounts):  # type: ignore[no-untyped-def]
    return accounts[4]


@pytest.fixture(scope="session")
def payer(accounts):  # type: ignore[no-untyped-def]
    return accounts[5]


@pytest.fixture(scope="session")
def service(accounts):  # type: ignore[no-untyped-def]
    """The API operator whose escrows the tests' vouchers draw on, and who settles them."""
    assert accounts[7].address == SERVICE
    return accounts[7]


@pytest.fixture(scope="session")
def other_payer(accounts):  # type: ignore[no-untyped-def]
    return accounts[6]


@pytest.fixture(scope="module")
def core(project, chain, deployer, treasury) -> CoreContracts:  # type: ignore[no-untyped-def]
    deployed = {d.name: d.address for d in deploy_core(project, deployer, chain, CoreConfig(treasury=treasury.address))}
    return CoreContracts.at(project, deployed)


@pytest.fixture(scope="module")
def model_id(core, developer) -> int:  # type: ignore[no-untyped-def]
    """A live model version: developer 10%, data originators 5%."""
    return register_model(core.models, developer, label="tiny-sd", developer_bps=1_000, data_bps=500)


@pytest.fixture(scope="module", autouse=True)
def _module_deployment(core, model_id) -> None:  # type: ignore[no-untyped-def]
    """Deploys the module's core and registers its model version before its first test."""


@pytest.fixture
def usd(project, deployer, core):  # type: ignore[no-untyped-def]
    """The development dollar (EIP-3009, x402 `exact`), allow-listed."""
    token = deployer.deploy(project.DevUsd, deployer)
    core.licenses.setCurrencyAllowed(token, True, sender=deployer)
    return token


@pytest.fixture
def asset(core, model_id, creator) -> bytes:  # type: ignore[no-untyped-def]
    """A registered asset of `creator`'s."""
    record = asset_record("asset", creator, model_id)
    register_asset(core.provenance, creator, record)
    return record.content_digest
