"""Shared fixtures: accounts with roles, and deployed contracts on whichever chain `ape test` uses."""

from __future__ import annotations

import pytest


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
