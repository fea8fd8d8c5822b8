"""The suite really runs on the chain `make` asked for: the embedded py-evm chain, or anvil."""

from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.chain

# Chain ids: ape's embedded test chain reports 1337, anvil 31337.
EXPECTED_CHAIN_ID = {"test": 1337, "foundry": 31337}


def test_provider_is_the_requested_one(chain):
    expected = os.environ.get("PROOFMINT_EXPECT_PROVIDER")
    if expected is None:
        pytest.skip("PROOFMINT_EXPECT_PROVIDER not set (set by `make test`)")
    assert chain.provider.name == expected
    assert chain.chain_id == EXPECTED_CHAIN_ID[expected]
