"""The event watcher (agents/runtime/events.py) on a real anvil: confirmations, checkpoint and
backfill, duplicate delivery, and reorgs (removed events reversed, the journal equal to a fresh
rescan of the canonical chain)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agents.runtime.events import ChainEvent, DeepReorgError, EventWatcher
from agents.runtime.journal import Journal
from tests.agents.runtime.anvil import private_anvil

TOPIC = "0x" + "ab" * 32
#: A contract that logs its calldata under TOPIC (LOG1) on every call.
EMITTER = bytes.fromhex("602c600c600039602c6000f3" + "3660006000377f" + "ab" * 32 + "366000a100")


class Ledger:
    """What a consuming daemon does with events: one job per request id, cancelled on removal."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.delivered = 0
        self.removed = 0

    async def on_event(self, event: ChainEvent) -> None:
        self.delivered += 1
        key = event.data.decode()
        if not self.journal.submit(key, "request", {"block": event.block_number}, stage="requested"):
            job = self.journal.get(key)
            if job is not None and job.stage == "cancelled":  # re-included after a reorg
                self.journal.advance([key], "cancelled", "requested")

    async def on_removed(self, event: ChainEvent) -> None:
        self.removed += 1
        key = event.data.decode()
        job = self.journal.get(key)
        if job is not None and job.stage == "requested":
            self.journal.advance([key], "requested", "cancelled")

    def live(self) -> list[str]:
        return sorted(job.key for job in self.journal.at_stage("requested"))


@pytest.fixture
def node() -> Iterator[tuple[str, Any]]:
    with private_anvil() as running:
        yield running


def _deploy(web3: Any) -> str:
    tx = web3.eth.send_transaction({"from": web3.eth.accounts[0], "data": EMITTER})
    return str(web3.eth.wait_for_transaction_receipt(tx)["contractAddress"])


def _emit(web3: Any, emitter: str, request: str, sender: int = 0) -> None:
    tx = web3.eth.send_transaction({"from": web3.eth.accounts[sender], "to": emitter, "data": request.encode()})
    web3.eth.wait_for_transaction_receipt(tx)


def _watcher(web3: Any, journal: Journal, ledger: Ledger, emitter: str, **options: Any) -> EventWatcher:
    return EventWatcher(
        "requests",
        web3,
        journal,
        address=emitter,
        topics=[TOPIC],
        on_event=ledger.on_event,
        on_removed=ledger.on_removed,
        **{"confirmations": 0, **options},
    )


def _canonical_requests(web3: Any, emitter: str) -> list[str]:
    logs = web3.eth.get_logs({"fromBlock": 0, "toBlock": "latest", "address": emitter, "topics": [TOPIC]})
    return sorted(bytes(log["data"]).decode() for log in logs)


def test_waits_for_confirmations_then_delivers_once(node: tuple[str, Any], tmp_path: Path):
    _, web3 = node
    emitter = _deploy(web3)
    journal = Journal(tmp_path / "j.db", final=())
    ledger = Ledger(journal)
    watcher = _watcher(web3, journal, ledger, emitter, confirmations=2)
    _emit(web3, emitter, "r1")
    assert asyncio.run(watcher.poll()) == 0  # not yet 2 blocks deep
    web3.provider.make_request("anvil_mine", [2])
    assert asyncio.run(watcher.poll()) == 1
    assert asyncio.run(watcher.poll()) == 0  # checkpointed: nothing twice
    assert ledger.live() == ["r1"]


def test_backfills_a_gap_in_bounded_steps_after_a_restart(node: tuple[str, Any], tmp_path: Path):
    _, web3 = node
    emitter = _deploy(web3)
    path = tmp_path / "j.db"
    journal = Journal(path, final=())
    asyncio.run(_watcher(web3, journal, Ledger(journal), emitter).poll())
    journal.close()
    for i in range(30):  # the daemon is down
        _emit(web3, emitter, f"r{i:02d}")
    journal = Journal(path, final=())
    ledger = Ledger(journal)
    asyncio.run(_watcher(web3, journal, ledger, emitter, max_range=7).poll())
    assert ledger.live() == _canonical_requests(web3, emitter) and len(ledger.live()) == 30


def test_an_event_delivered_twice_has_one_effect(node: tuple[str, Any], tmp_path: Path):
    _, web3 = node
    emitter = _deploy(web3)
    journal = Journal(tmp_path / "j.db", final=())
    ledger = Ledger(journal)
    _emit(web3, emitter, "r1")
    asyncio.run(_watcher(web3, journal, ledger, emitter).poll())
    journal.db.execute("DELETE FROM checkpoints")  # a crash before the checkpoint: the same logs come again
    journal.db.execute("DELETE FROM events")
    asyncio.run(_watcher(web3, journal, ledger, emitter).poll())
    assert ledger.delivered == 2 and ledger.live() == ["r1"]
    assert [t for _, t in journal.history("r1")] == ["requested"]  # one job, one effect


def test_a_reorg_removes_reverses_and_requeues_to_match_a_fresh_rescan(node: tuple[str, Any], tmp_path: Path):
    _, web3 = node
    emitter = _deploy(web3)
    journal = Journal(tmp_path / "j.db", final=())
    ledger = Ledger(journal)
    watcher = _watcher(web3, journal, ledger, emitter)
    _emit(web3, emitter, "before")
    asyncio.run(watcher.poll())
    snapshot = web3.provider.make_request("evm_snapshot", [])["result"]
    for request in ("orphaned", "kept"):
        _emit(web3, emitter, request)
    asyncio.run(watcher.poll())
    assert ledger.live() == ["before", "kept", "orphaned"]
    web3.provider.make_request("evm_revert", [snapshot])  # the chain forks below the two blocks
    _emit(web3, emitter, "kept", sender=1)  # re-included by another transaction
    _emit(web3, emitter, "new")
    web3.provider.make_request("anvil_mine", [2])  # the new branch is longer
    asyncio.run(watcher.poll())
    assert ledger.removed == 2
    assert ledger.live() == _canonical_requests(web3, emitter) == ["before", "kept", "new"]
    orphaned = journal.get("orphaned")
    assert orphaned is not None and orphaned.stage == "cancelled"
    fresh = Journal(tmp_path / "fresh.db", final=())
    fresh_ledger = Ledger(fresh)
    asyncio.run(_watcher(web3, fresh, fresh_ledger, emitter).poll())
    assert fresh_ledger.live() == ledger.live()


def test_a_reorg_deeper_than_the_window_is_refused(node: tuple[str, Any], tmp_path: Path):
    _, web3 = node
    emitter = _deploy(web3)
    journal = Journal(tmp_path / "j.db", final=())
    ledger = Ledger(journal)
    snapshot = web3.provider.make_request("evm_snapshot", [])["result"]
    _emit(web3, emitter, "deep")
    web3.provider.make_request("anvil_mine", [10])
    watcher = _watcher(web3, journal, ledger, emitter, reorg_window=4)
    asyncio.run(watcher.poll())
    web3.provider.make_request("evm_revert", [snapshot])
    web3.provider.make_request("anvil_mine", [15])
    with pytest.raises(DeepReorgError, match="check the node"):
        asyncio.run(watcher.poll())


def test_bad_settings_are_refused(tmp_path: Path):
    journal = Journal(tmp_path / "j.db", final=())
    ledger = Ledger(journal)
    with pytest.raises(ValueError, match="confirmations"):
        _watcher(None, journal, ledger, "0x0", confirmations=-1)
