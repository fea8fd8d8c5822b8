"""The in-process chain's choices (agents/runtime/inprocess.py): the sender's one-execution gas
estimate is scoped to its own calls, so ape and every other caller keep eth-tester's estimator.
Embedded chain only (anvil is another process: nothing of this applies there)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from agents.core.reverts import WouldRevertError
from agents.runtime.chain import ChainClient
from agents.runtime.inprocess import estimate_gas_once, is_in_process
from agents.runtime.journal import Journal

SINK = "0x000000000000000000000000000000000000dEaD"


@pytest.fixture
def pyevm(chain: Any) -> Any:
    web3 = chain.provider.web3
    if not is_in_process(web3):
        pytest.skip("the in-process chain only")
    return web3.provider.ethereum_tester.backend.chain


def test_one_execution_estimates_leave_the_chains_own_estimator_in_place(
    chain: Any, accounts: Any, project: Any, pyevm: Any
):
    web3 = chain.provider.web3
    own = pyevm.gas_estimator
    transfer = {"from": accounts[1].address, "to": SINK, "value": 1}
    # a plain transfer: intrinsic 21,000 plus the 1/63 a call leaves behind, plus one
    assert estimate_gas_once(web3, transfer) == 21_000 + 21_000 // 63 + 1
    assert pyevm.gas_estimator is own
    token = accounts[0].deploy(project.TestToken, "T", "T", 18)
    mint = {"from": accounts[1].address, "to": token.address, "data": token.mint.encode_input(accounts[1], 10**18)}
    once = estimate_gas_once(web3, mint)
    assert pyevm.gas_estimator is own
    assert token.mint(accounts[1], 10**18, sender=accounts[1], gas=once).status == 1  # the estimate suffices
    # a revert surfaces as from web3's estimate, and the estimator is still put back
    target = accounts[0].deploy(project.TestVerifier).address
    with pytest.raises(Exception, match="revert"):
        estimate_gas_once(web3, {"from": accounts[1].address, "to": target, "data": "0x12345678"})
    assert pyevm.gas_estimator is own


def test_after_the_sender_has_sent_ape_estimates_with_eth_testers_search(
    chain: Any, accounts: Any, project: Any, pyevm: Any, tmp_path: Path
):
    web3 = chain.provider.web3
    own = pyevm.gas_estimator
    target = accounts[0].deploy(project.TestVerifier).address  # every call without a valid proof reverts
    journal = Journal(tmp_path / "journal.db", final=())
    client = ChainClient(web3, Account.from_key(accounts[7].private_key), journal, {}, {}, poll=0.01)
    sender = client.sender  # the daemons' sender: it estimates with one execution, on its own calls only

    async def main() -> int:
        await sender.start()
        receipt = await sender.send_and_wait(SINK, b"", value=1)
        with pytest.raises(WouldRevertError, match="would revert"):
            await sender.send(target, bytes.fromhex("12345678"))
        return int(receipt["gasUsed"])

    assert asyncio.run(main()) == 21_000
    journal.close()
    assert pyevm.gas_estimator is own
    receipt = accounts[2].transfer(accounts[3], 1)  # ape estimates through eth-tester's search, as before
    assert receipt.status == 1
