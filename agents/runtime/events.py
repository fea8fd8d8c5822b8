"""Chain events for the daemons: read at a confirmation depth, checkpointed, backfilled after a
gap, and reconciled when the chain reorganises.

Lifecycle of `EventWatcher.poll()`:
1. Reorg check: the checkpoint's block, and the newest blocks that delivered events, must still
   have the hashes recorded for them. The highest block that does is the fork point; every event
   delivered above it is handed to `on_removed` (newest first) and marked removed, and scanning
   resumes above the fork point. A fork deeper than `reorg_window` blocks raises.
2. Backfill: logs from the block after the checkpoint up to `head - confirmations`, at most
   `max_range` blocks per request (a daemon that was down catches up in steps).
3. Delivery: each log not yet delivered is handed to `on_event`, then recorded; then the
   checkpoint (last scanned block and its hash) is written.

Delivery is at least once (a crash between a handler and its record delivers the event again):
handlers are idempotent by the event's content (a request id, a digest), as the journal's keys are.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from agents.core.errors import PermanentError
from agents.runtime.inprocess import node_executor
from agents.runtime.journal import Journal
from agents.runtime.retry import Backoff, call_node


class DeepReorgError(PermanentError):
    """The chain changed below the watcher's reorg window: an operator must look."""


@dataclass(frozen=True)
class ChainEvent:
    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int
    address: str
    topics: tuple[str, ...]
    data: bytes
    removed: bool = False


def _hex(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    text = str(value)
    return text if text.startswith("0x") else "0x" + text


Handler = Callable[[ChainEvent], Awaitable[None]]


class EventWatcher:
    """See the module docstring."""

    def __init__(
        self,
        name: str,
        web3: Any,
        journal: Journal,
        *,
        address: str | Sequence[str],
        topics: Sequence[Any] | None = None,
        on_event: Handler,
        on_removed: Handler,
        confirmations: int = 2,
        start_block: int = 0,
        max_range: int = 2_000,
        reorg_window: int = 128,
        backoff: Backoff | None = None,
    ) -> None:
        if confirmations < 0 or max_range < 1 or reorg_window < 1:
            raise ValueError("confirmations >= 0, max_range >= 1 and reorg_window >= 1")
        self.name, self.web3, self.journal = name, web3, journal
        self.address, self.topics = address, list(topics) if topics else None
        self.on_event, self.on_removed = on_event, on_removed
        self.confirmations, self.start_block = confirmations, start_block
        self.max_range, self.reorg_window = max_range, reorg_window
        self.backoff = backoff or Backoff(base=0.1, cap=2.0, deadline=30.0)
        self._key = f"events:{name}"
        self._executor = node_executor(web3)

    async def _rpc(self, function: Callable[..., Any], *args: Any) -> Any:
        return await call_node(function, *args, backoff=self.backoff, executor=self._executor)

    async def _hash_of(self, number: int) -> str | None:
        try:
            block = await self._rpc(self.web3.eth.get_block, number)
        except Exception as error:
            if "not found" in str(error).lower():
                return None
            raise
        return _hex(block["hash"])

    async def _fork_point(self, checkpoint: dict[str, Any]) -> int | None:
        """None when the checkpoint block is still canonical; else the block to rescan above: the
        newest block that delivered events and is still canonical, or, with no such block in
        the window, `reorg_window` blocks below the checkpoint (nothing delivered there to undo)."""
        top = int(checkpoint["block"])
        if await self._hash_of(top) == checkpoint["hash"]:
            return None
        floor = max(self.start_block - 1, top - self.reorg_window)
        known = await self.journal.call(self.journal.event_blocks, self.name, limit=self.reorg_window + 1)
        for number, block_hash in known:
            if number < floor:
                raise DeepReorgError(
                    f"{self.name}: block {number}, which delivered events, is more than {self.reorg_window} blocks"
                    f" below the checkpoint and no newer delivering block is canonical: check the node"
                )
            if await self._hash_of(number) == block_hash:
                return number
        return floor

    async def _unwind(self, fork: int) -> int:
        removed = await self.journal.call(self.journal.events_after, self.name, fork)
        for block_hash, log_index, number, tx_hash, payload in removed:
            event = ChainEvent(
                number,
                block_hash,
                tx_hash,
                log_index,
                payload["address"],
                tuple(payload["topics"]),
                bytes.fromhex(payload["data"]),
                removed=True,
            )
            await self.on_removed(event)
            await self.journal.call(self.journal.mark_event_removed, self.name, block_hash, log_index)
        return len(removed)

    async def poll(self) -> int:
        """One pass (see the module docstring); returns how many events (and removals) it handed on."""
        handed = 0
        checkpoint = await self.journal.call(self.journal.checkpoint, self._key)
        scanned = self.start_block - 1
        if checkpoint is not None:
            scanned = int(checkpoint["block"])
            fork = await self._fork_point(checkpoint)
            if fork is not None:
                handed += await self._unwind(fork)
                scanned = fork
        head = int(await self._rpc(lambda: self.web3.eth.block_number))
        target = head - self.confirmations
        while scanned < target:
            upto = min(target, scanned + self.max_range)
            query: dict[str, Any] = {"fromBlock": scanned + 1, "toBlock": upto, "address": self.address}
            if self.topics:
                query["topics"] = self.topics
            logs = await self._rpc(self.web3.eth.get_logs, query)
            for log in sorted(logs, key=lambda item: (int(item["blockNumber"]), int(item["logIndex"]))):
                event = ChainEvent(
                    int(log["blockNumber"]),
                    _hex(log["blockHash"]),
                    _hex(log["transactionHash"]),
                    int(log["logIndex"]),
                    str(log["address"]),
                    tuple(_hex(t) for t in log["topics"]),
                    bytes(log["data"]),
                )
                if await self.journal.call(self.journal.event_seen, self.name, event.block_hash, event.log_index):
                    continue
                await self.on_event(event)
                await self.journal.call(
                    self.journal.record_event,
                    self.name,
                    event.block_hash,
                    event.log_index,
                    event.block_number,
                    event.tx_hash,
                    {"address": event.address, "topics": list(event.topics), "data": event.data.hex()},
                )
                handed += 1
            block_hash = await self._hash_of(upto)
            await self.journal.call(self.journal.set_checkpoint, self._key, {"block": upto, "hash": block_hash})
            scanned = upto
        return handed

    async def run(self, stop: asyncio.Event, interval: float = 1.0) -> None:
        """Polls every `interval` seconds until `stop` is set."""
        while not stop.is_set():
            await self.poll()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
