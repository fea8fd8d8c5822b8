"""ape's debug-log search is skipped only where it cannot find anything (tests/debug_logs_skip.py):
on the embedded chain, for a transaction to a contract, the skipped search would have found no
log (ape's own method, run after, replays the transaction and finds none), and the send no longer
replays it; on anvil, or for the console.log address, ape's own method runs."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from ape.api.transactions import ReceiptAPI
from ape_ethereum._print import CONSOLE_ADDRESS

from tests import debug_logs_skip

pytestmark = pytest.mark.chain


def test_the_skip_is_installed_once_and_keeps_apes_method():
    debug_logs_skip.install()  # conftest installed it: not wrapped twice
    wrapper = ReceiptAPI.show_debug_logs
    assert getattr(wrapper, "skips_basic_trees", False)
    assert not getattr(wrapper.__wrapped__, "skips_basic_trees", False)  # type: ignore[attr-defined]


def test_a_contract_transaction_is_not_replayed_for_logs_it_cannot_have(chain, project, deployer, monkeypatch):
    registry = deployer.deploy(project.ModelRegistry)
    provider = chain.provider
    embedded = provider.name == "test"
    calls: list[object] = []
    real_send_call = type(provider).send_call

    def counting(self, txn, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(txn)
        return real_send_call(self, txn, **kwargs)

    monkeypatch.setattr(type(provider), "send_call", counting)
    receipt = registry.registerModel((b"\1" * 32, b"\2" * 32, b"\0" * 32, 0, 1_000, 0, "ipfs://model"), sender=deployer)
    assert not receipt.failed
    assert debug_logs_skip.finds_nothing(receipt) is embedded
    if embedded:
        assert calls == [], "the send replayed the transaction for its debug logs"
    # ape's own search, on a receipt of its own: on the embedded chain it replays the transaction
    # (one eth_call) and finds nothing, which is what the skip assumed
    calls.clear()
    fresh = chain.get_receipt(receipt.txn_hash)
    assert fresh.debug_logs_lines == []
    if embedded:
        assert len(calls) == 1


def test_the_console_log_address_and_other_providers_keep_apes_search(chain):
    to_console = SimpleNamespace(receiver=CONSOLE_ADDRESS, provider=chain.provider)
    assert not debug_logs_skip.finds_nothing(to_console)
    lower = SimpleNamespace(receiver=CONSOLE_ADDRESS.lower(), provider=chain.provider)
    assert not debug_logs_skip.finds_nothing(lower)
    elsewhere = SimpleNamespace(receiver="0x" + "11" * 20, provider=object())
    assert not debug_logs_skip.finds_nothing(elsewhere)
