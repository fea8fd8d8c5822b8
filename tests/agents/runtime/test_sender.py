"""The nonce-managed sender (agents/runtime/sender.py) on a real anvil: simulation before
broadcast, stuck transactions replaced, dropped ones re-sent, 50 at once with a kill -9 in the
middle, and the embedded chain."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from agents.core.reverts import WouldRevertError
from agents.runtime.journal import Journal
from agents.runtime.retry import Backoff, BreakerState, CircuitBreaker, DeadlineExceededError, is_retryable_rpc
from agents.runtime.sender import BroadcastRefusedError, TxSender
from tests.agents.runtime.anvil import KEY_0, KEY_1, private_anvil
from tests.agents.runtime.faulty_rpc import faulty_proxy

#: Creation code of a contract whose every call reverts with empty data (PUSH1 0 PUSH1 0 REVERT).
ALWAYS_REVERTS = bytes.fromhex("6460006000fd6000526005601bf3")
SINK = "0x000000000000000000000000000000000000dEaD"


@pytest.fixture
def node() -> Iterator[tuple[str, Any]]:
    with private_anvil() as running:
        yield running


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    j = Journal(tmp_path / "journal.db", final=())
    yield j
    j.close()


def _sender(web3: Any, journal: Journal, key: str = KEY_0, **options: Any) -> TxSender:
    return TxSender(web3, Account.from_key(key), journal, poll=0.02, **options)


def test_sends_in_nonce_order_and_completes_intents(node: tuple[str, Any], journal: Journal):
    _, web3 = node
    sender = _sender(web3, journal)

    async def main() -> list[dict[str, Any]]:
        await sender.start()
        sent = [await sender.send(SINK, b"", value=i + 1, keys=[f"k{i}"]) for i in range(5)]
        return [await sender.wait(p) for p in sent]

    receipts = asyncio.run(main())
    assert [web3.eth.get_transaction(r["transactionHash"])["nonce"] for r in receipts] == [0, 1, 2, 3, 4]
    assert all(r["status"] == 1 for r in receipts)
    assert journal.open_intents(sender.intent_name) == []
    assert journal.intent_keys(sender.intent_name) == {f"k{i}" for i in range(5)}


def test_a_call_that_would_revert_is_never_broadcast(node: tuple[str, Any], journal: Journal):
    _, web3 = node
    deployer = web3.eth.accounts[0]
    receipt = web3.eth.wait_for_transaction_receipt(
        web3.eth.send_transaction({"from": deployer, "data": ALWAYS_REVERTS})
    )
    target = receipt["contractAddress"]
    sender = _sender(web3, journal, KEY_1)

    async def main() -> None:
        await sender.start()
        with pytest.raises(WouldRevertError, match="would revert"):
            await sender.send(target, b"\x12\x34")

    asyncio.run(main())
    assert web3.eth.get_transaction_count(sender.address) == 0  # nothing signed or sent
    assert journal.intent_keys(sender.intent_name) == set()


def test_a_refused_broadcast_gives_the_nonce_back(node: tuple[str, Any], journal: Journal):
    _, web3 = node
    poor = Account.create()
    web3.eth.send_transaction({"from": web3.eth.accounts[0], "to": poor.address, "value": 10**15})
    sender = TxSender(web3, poor, journal, poll=0.02)

    async def main() -> None:
        await sender.start()
        with pytest.raises((BroadcastRefusedError, WouldRevertError)):
            await sender.send(SINK, b"", value=10**18)  # more than it has
        await sender.send_and_wait(SINK, b"", value=1)

    asyncio.run(main())
    assert web3.eth.get_transaction_count(poor.address) == 1  # nonce 0 reused: no gap


def test_a_stuck_transaction_is_replaced_with_higher_fees(node: tuple[str, Any], journal: Journal):
    _, web3 = node
    sender = _sender(web3, journal, stuck_after=0.2)

    async def main() -> dict[str, Any]:
        await sender.start()
        web3.provider.make_request("evm_setAutomine", [False])
        pending = await sender.send(SINK, b"", value=1)
        waiting = asyncio.create_task(sender.wait(pending))
        while sender.replacements < 2:  # noqa: ASYNC110 - polling the sender under test
            await asyncio.sleep(0.05)
        await asyncio.to_thread(web3.provider.make_request, "evm_mine", [])
        return await asyncio.wait_for(waiting, 20)

    receipt = asyncio.run(main())
    mined = web3.eth.get_transaction(receipt["transactionHash"])
    assert mined["nonce"] == 0
    [intent_data] = [row[0] for row in journal.db.execute("SELECT data FROM intents").fetchall()]  # one intent
    assert receipt["transactionHash"].hex().removeprefix("0x") in intent_data  # every version journaled
    assert mined["maxPriorityFeePerGas"] > 1_000_000_000  # a bumped version won
    assert web3.eth.get_transaction_count(sender.address) == 1


def test_a_dropped_transaction_is_sent_again_unchanged(node: tuple[str, Any], journal: Journal):
    _, web3 = node
    sender = _sender(web3, journal, stuck_after=60)

    async def main() -> tuple[bytes, dict[str, Any]]:
        await sender.start()
        web3.provider.make_request("evm_setAutomine", [False])
        pending = await sender.send(SINK, b"", value=7)
        web3.provider.make_request("anvil_dropTransaction", ["0x" + pending.hashes[0].hex()])
        assert web3.provider.make_request("txpool_content", [])["result"]["pending"] == {}
        waiting = asyncio.create_task(sender.wait(pending))
        for _ in range(400):  # the sender notices and re-broadcasts
            if web3.provider.make_request("txpool_content", [])["result"]["pending"]:
                break
            await asyncio.sleep(0.05)
        await asyncio.to_thread(web3.provider.make_request, "evm_mine", [])
        return pending.hashes[0], await asyncio.wait_for(waiting, 20)

    original, receipt = asyncio.run(main())
    assert bytes(receipt["transactionHash"]) == original and sender.replacements == 0


def test_an_already_known_transaction_counts_as_sent(node: tuple[str, Any], journal: Journal):
    _, web3 = node
    sender = _sender(web3, journal)

    async def main() -> None:
        await sender.start()
        web3.provider.make_request("evm_setAutomine", [False])
        pending = await sender.send(SINK, b"", value=1)
        await sender._broadcast(pending.raws[0])  # the node already has it: no error
        web3.provider.make_request("evm_mine", [])
        await sender.wait(pending)

    asyncio.run(main())


_BURST = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from eth_account import Account
    from web3 import HTTPProvider, Web3
    from agents.runtime.journal import Journal
    from agents.runtime.sender import TxSender

    async def main() -> None:
        web3 = Web3(HTTPProvider(sys.argv[1]))
        journal = Journal(Path(sys.argv[2]), final=())
        sender = TxSender(web3, Account.from_key(sys.argv[3]), journal, poll=0.02)
        await sender.start()
        done = journal.intent_keys(sender.intent_name)
        todo = [i for i in range(50) if f"tx{i}" not in done]
        print("ready", len(todo), flush=True)
        async def one(i: int) -> None:
            pending = await sender.send("0x000000000000000000000000000000000000dEaD", b"", value=i + 1, keys=[f"tx{i}"])
            await sender.wait(pending)
        await asyncio.gather(*(one(i) for i in todo))
        print("done", flush=True)
        journal.close()

    asyncio.run(main())
    """
)


def test_fifty_at_once_with_a_kill_9_in_the_middle_all_mine_with_contiguous_nonces(
    node: tuple[str, Any], tmp_path: Path
):
    url, web3 = node
    path = tmp_path / "journal.db"
    first = subprocess.Popen([sys.executable, "-c", _BURST, url, str(path), KEY_0], stdout=subprocess.PIPE, text=True)
    assert first.stdout is not None and first.stdout.readline().startswith("ready 50")
    deadline = time.monotonic() + 60
    while web3.eth.get_transaction_count(web3.eth.accounts[0]) < 15:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    mid = web3.eth.get_transaction_count(web3.eth.accounts[0])
    assert mid < 50, "killed in the middle"
    second = subprocess.run(
        [sys.executable, "-c", _BURST, url, str(path), KEY_0], capture_output=True, text=True, timeout=180
    )
    assert second.returncode == 0, second.stderr
    assert "nonce too low" not in second.stderr.lower()
    assert web3.eth.get_transaction_count(web3.eth.accounts[0]) == 50  # nonces 0..49, no gap, none twice
    values = sorted(
        tx["value"]
        for n in range(1, web3.eth.block_number + 1)
        for tx in web3.eth.get_block(n, full_transactions=True)["transactions"]
    )
    assert values == list(range(1, 51))  # every transfer exactly once
    journal = Journal(path, final=())
    assert journal.open_intents(f"tx:{web3.eth.accounts[0].lower()}") == []
    journal.close()


@pytest.mark.chain
def test_works_on_the_chain_under_test(chain: Any, accounts: Any, tmp_path: Path):
    """The embedded py-evm chain (and anvil, in the anvil run) through ape's web3."""
    web3 = chain.provider.web3
    account = Account.from_key(accounts[7].private_key)
    journal = Journal(tmp_path / "journal.db", final=())
    sender = TxSender(web3, account, journal, poll=0.01)

    async def main() -> list[dict[str, Any]]:
        await sender.start()
        return list(await asyncio.gather(*(sender.send_and_wait(SINK, b"", value=i + 1) for i in range(5))))

    receipts = asyncio.run(main())
    nonces = sorted(web3.eth.get_transaction(r["transactionHash"])["nonce"] for r in receipts)
    assert nonces == list(range(nonces[0], nonces[0] + 5))
    journal.close()


@pytest.mark.chain
def test_a_would_be_revert_leaves_nothing_on_the_chain_under_test(chain: Any, accounts: Any, tmp_path: Path):
    """Embedded chain: the transaction is applied once and undone when it reverts (step 2);
    anvil: it is simulated first. Either way WouldRevertError, no block, no nonce or fee spent,
    and the next transaction takes the same nonce; a payment beyond the balance is refused."""
    web3 = chain.provider.web3
    deployer, account = Account.from_key(accounts[8].private_key), Account.from_key(accounts[7].private_key)
    fees = {"maxFeePerGas": 10**11, "maxPriorityFeePerGas": 10**9, "chainId": web3.eth.chain_id}
    deploy = {"data": "0x" + ALWAYS_REVERTS.hex(), "gas": 100_000, "value": 0, **fees}
    deploy["nonce"] = web3.eth.get_transaction_count(deployer.address)
    sent = web3.eth.send_raw_transaction(deployer.sign_transaction(deploy).raw_transaction)
    target = web3.eth.wait_for_transaction_receipt(sent)["contractAddress"]
    journal = Journal(tmp_path / "journal.db", final=())
    sender = TxSender(web3, account, journal, poll=0.01)

    async def main() -> dict[str, Any]:
        await sender.start()
        block, nonce = web3.eth.block_number, web3.eth.get_transaction_count(account.address)
        balance = web3.eth.get_balance(account.address)
        for _ in range(2):
            with pytest.raises(WouldRevertError, match="would revert"):
                await sender.send(target, b"\x12\x34")
        assert (web3.eth.block_number, web3.eth.get_transaction_count(account.address)) == (block, nonce)
        assert web3.eth.get_balance(account.address) == balance
        with pytest.raises((BroadcastRefusedError, WouldRevertError)):
            await sender.send(SINK, b"", value=balance)  # leaves nothing for gas
        receipt = await sender.send_and_wait(SINK, b"", value=1)
        assert web3.eth.get_transaction(receipt["transactionHash"])["nonce"] == nonce
        return receipt

    assert asyncio.run(main())["status"] == 1
    assert journal.open_intents(sender.intent_name) == []
    journal.close()


def _through(proxy_url: str) -> Any:
    from web3 import HTTPProvider, Web3

    # web3's own retries off: the sender's policy (backoff, deadline, breaker) is what is tested
    return Web3(HTTPProvider(proxy_url, request_kwargs={"timeout": 1.0}, exception_retry_configuration=None))


@pytest.mark.parametrize("faults", [["429", "502", "hang", "garbage", "reset"], ["502"] * 4 + ["429"] * 4])
def test_rpc_faults_are_retried_and_the_transaction_lands_once(
    node: tuple[str, Any], journal: Journal, faults: list[str]
):
    url, web3 = node
    with faulty_proxy(url) as (proxy_url, proxy):
        sender = TxSender(
            _through(proxy_url),
            Account.from_key(KEY_0),
            journal,
            poll=0.02,
            backoff=Backoff(base=0.02, cap=0.2, deadline=30),
            breaker=CircuitBreaker("rpc", threshold=100),
        )

        async def main() -> dict[str, Any]:
            await sender.start()
            proxy.faults.extend(faults)
            return await sender.send_and_wait(SINK, b"", value=5)

        receipt = asyncio.run(main())
        assert proxy.injected == len(faults)
    assert receipt["status"] == 1
    assert web3.eth.get_transaction_count(web3.eth.accounts[0]) == 1  # sent once despite the faults


def test_a_dead_rpc_opens_the_breaker_and_gives_up_at_the_deadline(node: tuple[str, Any], journal: Journal):
    url, _ = node
    with faulty_proxy(url) as (proxy_url, proxy):
        breaker = CircuitBreaker("rpc", threshold=3, cool_down=60, retryable=is_retryable_rpc)
        sender = TxSender(
            _through(proxy_url),
            Account.from_key(KEY_0),
            journal,
            backoff=Backoff(base=0.01, cap=0.05, deadline=1.0),
            breaker=breaker,
        )
        proxy.always = "502"
        with pytest.raises(DeadlineExceededError, match="gave up"):
            asyncio.run(sender.start())
        assert breaker.state is BreakerState.OPEN
        assert proxy.requests == 3  # after three failures the node was left alone: calls failed fast
