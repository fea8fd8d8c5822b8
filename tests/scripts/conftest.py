"""Fixtures of the ape-script tests: each test module gets its own anvil (`anvil`) and, through
`ape run deploy`, its own deployment on it (`deployed`)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.scripts.helpers import Anvil, ape_run


@pytest.fixture(scope="module")
def anvil() -> Iterator[Anvil]:
    node = Anvil()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="module")
def deployed(anvil: Anvil) -> Anvil:
    out = ape_run(anvil, "deploy").stdout
    assert "RoyaltySplitter" in out and "recorded" in out
    record = json.loads(anvil.record.read_text())
    assert record["chainId"] == 31337
    assert [c["name"] for c in record["contracts"]] == [
        "ModelRegistry",
        "ProvenanceRegistry",
        "LicenseManager",
        "RoyaltySplitter",
    ]
    return anvil
