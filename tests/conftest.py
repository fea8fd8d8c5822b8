"""Shared fixtures: accounts with roles, and deployed contracts on whichever chain `ape test` uses."""

from __future__ import annotations

from pathlib import Path

import pytest

CONTRACT_SUITES = Path(__file__).resolve().parent / "contracts"
#: suites that touch no chain, run in the anvil pass (marked `offchain`) to even out the two passes
OFFCHAIN_SUITES = [Path(__file__).resolve().parent / name for name in ("toolchain", "media", "deploy", "tools")]


def pytest_configure(config: pytest.Config) -> None:
    """`ape.reverts` made strict for custom errors (tests/strict_reverts.py): a check of an error
    ape could not decode is decoded from the raw revert data instead of passing unchecked. The
    embedded chain's BN254 precompiles computed once per distinct input (tests/bn254_memo.py),
    and ape's debug-log replay of each transaction skipped where it finds nothing
    (tests/debug_logs_skip.py)."""
    import ape

    from tests import bn254_memo, debug_logs_skip
    from tests.strict_reverts import StrictReverts

    ape.reverts = StrictReverts  # type: ignore[attr-defined]
    bn254_memo.install()
    debug_logs_skip.install()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Marks the contract suites `contracts` (the Makefile runs them on the embedded chain, a
    `smoke` few on anvil too), and the suites that touch no chain `offchain` (the Makefile runs
    them once, in the anvil pass, which is the shorter)."""
    for item in items:
        if CONTRACT_SUITES in item.path.parents:
            item.add_marker(pytest.mark.contracts)
        if any(suite in item.path.parents for suite in OFFCHAIN_SUITES):
            item.add_marker(pytest.mark.offchain)


@pytest.fixture(scope="session")
def deployer(accounts):  # type: ignore[no-untyped-def]
    return accounts[0]


@pytest.fixture(scope="session")
def developer(accounts):  # type: ignore[no-untyped-def]
    return accounts[1]


@pytest.fixture(scope="session")
def other_developer(accounts):  # type: ignore[no-untyped-def]
    return accounts[2]


@pytest.fixture(scope="session")
def stranger(accounts):  # type: ignore[no-untyped-def]
    return accounts[9]


@pytest.fixture(scope="session")
def zk_kit(tmp_path_factory):  # type: ignore[no-untyped-def]
    """Two real EZKL circuits (different weights), their verifiers and four proofs: see tests/zk_support.py."""
    from tests.zk_support import build_kit

    return build_kit(tmp_path_factory.mktemp("zk"))
