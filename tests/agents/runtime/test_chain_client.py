"""The chain client's own ABI work (agents/runtime/chain.py): call data encoded as web3 encodes
it, receipts' logs decoded as web3 decodes them, and only the named contract's logs taken: a log
with the same signature from any other contract the transaction reached is not its own."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from web3.logs import DISCARD

from agents.core.toolchain import project_root
from agents.runtime.chain import ChainClient, load_abis
from agents.runtime.journal import Journal

pytestmark = pytest.mark.chain


@pytest.fixture
def tokens(accounts: Any, project: Any) -> tuple[Any, Any]:
    minter = accounts[0]
    return minter.deploy(project.TestToken, "A", "A", 18), minter.deploy(project.TestToken, "B", "B", 18)


def _client(chain: Any, key: str, tmp_path: Path, addresses: dict[str, str]) -> ChainClient:
    abis = load_abis(project_root(), ["TestToken", "ProvenanceRegistry"])
    journal = Journal(tmp_path / "journal.db", final=())
    return ChainClient(chain.provider.web3, Account.from_key(key), journal, addresses, abis, poll=0.01)


def test_call_data_is_what_web3_encodes_and_bad_arguments_are_refused_as_web3_refuses_them(
    chain: Any, accounts: Any, tokens: tuple[Any, Any], tmp_path: Path
):
    token, _ = tokens
    client = _client(
        chain, accounts[1].private_key, tmp_path, {"TestToken": token.address, "ProvenanceRegistry": token.address}
    )
    web3 = client.contract("ProvenanceRegistry")
    holder = str(accounts[2].address)
    record = (b"\x01" * 32, holder, 7, b"\x02" * 32, b"\x03" * 32, [b"\x04" * 32], "ipfs://bafy" + "x" * 50)
    records = [record, (b"\x05" * 32, holder, 1, b"\x06" * 32, b"\x07" * 32, [], "")]
    assert client.encode("ProvenanceRegistry", "registerMany", records, [[3], []]) == bytes.fromhex(
        web3.encode_abi("registerMany", args=[records, [[3], []]])[2:]
    )
    assert client.encode("TestToken", "transfer", holder, 10**30) == bytes.fromhex(
        client.contract("TestToken").encode_abi("transfer", args=[holder, 10**30])[2:]
    )
    bad_transfers = ((holder,), (holder, -1), (holder, 2**256), ("0x" + "ab" * 19, 1), (holder.lower(), 1))
    bad_calls = [("TestToken", "transfer", bad) for bad in bad_transfers]
    # a short digest is refused, not padded with zeros into another digest
    bad_calls += [
        ("ProvenanceRegistry", "registerBatchLeaves", ([b"\x01" * 31],)),
        ("ProvenanceRegistry", "exists", (b"",)),
    ]
    for name, function, bad in bad_calls:
        with pytest.raises(Exception) as ours:
            client.encode(name, function, *bad)
        with pytest.raises(Exception) as theirs:
            client.contract(name).encode_abi(function, args=list(bad))
        assert type(ours.value) is type(theirs.value), bad


def test_logs_decode_as_web3_does_and_a_same_signature_log_of_another_contract_is_not_taken(
    chain: Any, accounts: Any, tokens: tuple[Any, Any], tmp_path: Path
):
    ours, stranger = tokens
    for token in tokens:
        token.mint(accounts[1], 10**21, sender=accounts[0])
    client = _client(chain, accounts[1].private_key, tmp_path, {"TestToken": ours.address})

    async def transfers() -> tuple[dict[str, Any], dict[str, Any]]:
        await client.start()
        mine = await client.transact("TestToken", "transfer", str(accounts[3].address), 5 * 10**18)
        other = ChainClient(
            client.web3,
            client.account,
            client.sender.journal,
            {"TestToken": stranger.address},
            load_abis(project_root(), ["TestToken"]),
        )
        other.sender = client.sender  # one key, one nonce
        theirs = await other.transact("TestToken", "transfer", str(accounts[3].address), 9 * 10**18)
        return mine, theirs

    mine, theirs = asyncio.run(transfers())
    web3_event = client.contract("TestToken").events.Transfer()
    expected = list(web3_event.process_receipt(mine, errors=DISCARD))
    [decoded] = client.logs("TestToken", "Transfer", mine)
    assert len(expected) == 1 and decoded == expected[0]
    assert decoded["args"]["value"] == 5 * 10**18 and decoded["args"]["to"] == str(accounts[3].address)
    # the stranger's Transfer in the same receipt: web3 takes it as the token's own, the client does not
    spoofed = {**mine, "logs": [*theirs["logs"], *mine["logs"]]}
    assert len(list(web3_event.process_receipt(spoofed, errors=DISCARD))) == 2
    assert client.logs("TestToken", "Transfer", spoofed) == [decoded]
    # a log with the right emitter and signature that does not decode (a topic short) is left out,
    # as web3's DISCARD leaves it out
    broken = {**mine, "logs": [{**mine["logs"][0], "topics": mine["logs"][0]["topics"][:2]}]}
    assert client.logs("TestToken", "Transfer", broken) == []
    assert list(web3_event.process_receipt(broken, errors=DISCARD)) == []
    assert client.logs("TestToken", "Approval", mine) == []


def test_decoded_values_are_normalised_as_web3_normalises_them():
    """`logs` normalises each decoded value as web3's BASE_RETURN_NORMALIZERS would (it only
    checksums addresses, in arrays too), without web3's generic machinery for the rest."""
    from web3._utils.abi import map_abi_data
    from web3._utils.normalizers import BASE_RETURN_NORMALIZERS

    from agents.runtime.chain import _normal

    lower = "0x" + "ab" * 20
    cases = [
        ("address", lower),
        ("address[]", [lower, "0x" + "00" * 19 + "01"]),
        ("address[2]", (lower, lower)),
        ("uint256", 7),
        ("bytes32", b"\x01" * 32),
        ("string", "ipfs://x"),
        ("bool", True),
    ]
    for kind, value in cases:
        assert _normal(kind, value) == map_abi_data(BASE_RETURN_NORMALIZERS, [kind], [value])[0], kind
    assert _normal("address", lower) == "0xABaBaBaBABabABabAbAbABAbABabababaBaBABaB"
