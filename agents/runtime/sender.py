"""One nonce-managed transaction sender per key, journaled so a crash never loses or doubles a
transaction.

Lifecycle:
1. `start()` reconciles the previous life: every transaction it journaled but did not see mined
   is looked up; a mined one is completed, one still pending is awaited, one the node dropped
   is broadcast again (the same signed bytes: same nonce, same hash). The next nonce is the
   larger of the chain's pending count and the highest journaled nonce plus one.
2. `send()` simulates the call on the pending state first: a call that would revert raises
   `WouldRevertError` and nothing is signed or sent. Then, holding the nonce lock, it signs the
   transaction (EIP-1559 fees), journals it (nonce, signed bytes, hash) *before* broadcasting,
   and broadcasts; "already known" counts as sent. A broadcast refused for good gives the nonce
   back; RPC failures are retried with jittered backoff inside a deadline.
   On an in-process node the simulation and the transaction are one execution
   (`agents.runtime.inprocess.send_or_undo`): the transaction carries all the gas the key can pay
   for, up to the block's limit, and one that reverts is undone at once, its intent closed as
   refused and its nonce given back; a simulation on the restored state then names the revert
   (`WouldRevertError`), so callers see what they see on any node and no revert is ever on chain.
3. `wait()` polls for the receipt. A transaction not mined after `stuck_after` seconds is
   replaced: same nonce, both fees raised by `bump` (at least the 10% nodes require), re-signed,
   journaled, broadcast; whichever version is mined wins. A mined transaction whose status is 0
   raises `RevertedOnChainError` (the state changed between simulation and inclusion).
4. Every sent transaction's intent is completed with its receipt's block and status.

Node calls go through a circuit breaker (repeated failures fail fast for a cool-down) and are
retried with jittered backoff inside a deadline; a revert is never retried. The web3 instance is
synchronous (ape's embedded chain and HTTP nodes alike; build HTTP ones with
`exception_retry_configuration=None` so this policy is the only one); every call runs in a
worker thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Final

from agents.core.errors import PermanentError, RetryableError
from agents.core.reverts import preflight, preflight_gas
from agents.runtime.inprocess import estimate_gas_once, is_in_process, node_executor, send_or_undo
from agents.runtime.journal import Journal
from agents.runtime.retry import Backoff, CircuitBreaker, call_node, is_retryable_rpc

#: Node messages that mean "this exact transaction is already in my pool or chain".
ALREADY_KNOWN: Final = ("already known", "known transaction", "alreadyknown", "already imported", "already exists")
#: Node messages that mean the transaction can never be accepted as it is.
REFUSED: Final = ("insufficient funds", "intrinsic gas too low", "exceeds block gas limit", "invalid sender")
#: Node messages that mean "this nonce is used already" (geth/anvil, py-evm's eth-tester).
NONCE_USED: Final = ("nonce too low", "invalid transaction nonce")
DEFAULT_PRIORITY_FEE: Final = 1_000_000_000
RPC_BACKOFF: Final = Backoff(base=0.1, cap=2.0, deadline=30.0)


class RevertedOnChainError(PermanentError):
    """A transaction was mined with status 0."""


class TransactionTimeoutError(RetryableError, TimeoutError):
    """No version of a transaction was mined before the deadline; it stays journaled and the
    next `start()` picks it up."""


class _NonceTakenError(Exception):
    """The first broadcast of a nonce was refused as used: something else sent with this key."""


class BroadcastRefusedError(PermanentError):
    """The node refused a transaction for good (insufficient funds, bad gas); its nonce was given back."""


@dataclass
class Pending:
    """A sent transaction: its nonce, every signed version (oldest first), and its intent."""

    intent: int
    nonce: int
    tx: dict[str, Any]
    raws: list[bytes] = field(default_factory=list)
    hashes: list[bytes] = field(default_factory=list)
    sent_at: float = 0.0
    receipt: Any = None  # known at once on an in-process node (its broadcast mines it)


def _message(error: BaseException) -> str:
    return str(error).lower()


class TxSender:
    """See the module docstring."""

    def __init__(
        self,
        web3: Any,
        account: Any,
        journal: Journal,
        *,
        errors: dict[bytes, tuple[str, list[str], list[str]]] | None = None,
        stuck_after: float = 30.0,
        bump: float = 0.125,
        poll: float = 0.1,
        deadline: float = 300.0,
        backoff: Backoff = RPC_BACKOFF,
        clock: Callable[[], float] = time.monotonic,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        if bump < 0.1:
            raise ValueError("a replacement must raise fees by at least 10% (nodes refuse less)")
        self.web3, self.account, self.journal = web3, account, journal
        self.address: str = account.address
        self.errors = errors or {}
        self.stuck_after, self.bump, self.poll, self.deadline = stuck_after, bump, poll, deadline
        self.backoff, self._clock = backoff, clock
        self.breaker = breaker or CircuitBreaker(f"rpc {self.address[:10]}", retryable=is_retryable_rpc)
        self._lock = asyncio.Lock()
        self._executor = node_executor(web3)
        self._in_process = is_in_process(web3)
        self._next_nonce: int | None = None
        self._chain_id: int | None = None
        self.intent_name = f"tx:{self.address.lower()}"
        self.replacements = 0

    async def _rpc(self, function: Callable[..., Any], *args: Any) -> Any:
        """One node call in a worker thread, behind the circuit breaker, retried with backoff."""
        return await call_node(function, *args, backoff=self.backoff, breaker=self.breaker, executor=self._executor)

    async def _simulate(self, call: dict[str, Any]) -> int:
        """`preflight` then the gas estimate (raises WouldRevertError), retried on RPC failures; a
        call the node refuses outright (insufficient funds) is refused here, before anything is
        signed. On the in-process chain the estimate is the simulation (one execution, not two)."""
        try:
            if self._in_process:
                return int(await self._rpc(preflight_gas, partial(estimate_gas_once, self.web3), call, self.errors))
            await self._rpc(preflight, self.web3, call, self.errors)
            return int(await self._rpc(self.web3.eth.estimate_gas, call))
        except PermanentError:
            raise
        except Exception as error:
            if any(refused in _message(error) for refused in REFUSED):
                raise BroadcastRefusedError(f"the node refuses this call: {error}") from error
            raise

    # -- 1. reconcile -------------------------------------------------------------------------

    async def start(self) -> list[dict[str, Any]]:
        """Reconciles the previous life's transactions (see step 1); returns their receipts."""
        chain_nonce = int(await self._rpc(self.web3.eth.get_transaction_count, self.address, "pending"))
        open_intents = await self.journal.call(self.journal.open_intents, self.intent_name)
        journaled = max((int(i.data["nonce"]) + 1 for i in open_intents), default=0)
        self._next_nonce = max(chain_nonce, journaled)
        self._chain_id = int(await self._rpc(lambda: self.web3.eth.chain_id))  # fixed for a node: asked once
        receipts = []
        for intent in open_intents:
            pending = Pending(
                intent.id,
                int(intent.data["nonce"]),
                dict(intent.data["tx"]),
                [bytes.fromhex(r) for r in intent.data["raws"]],
                [bytes.fromhex(h) for h in intent.data["hashes"]],
                self._clock(),
            )
            receipts.append(await self.wait(pending))
        return receipts

    # -- 2. send ------------------------------------------------------------------------------

    async def send(self, to: str, data: bytes, *, value: int = 0, label: str = "", keys: Iterable[str] = ()) -> Pending:
        """Simulates, signs, journals and broadcasts one call; returns it for `wait`."""
        call = {"from": self.address, "to": to, "data": "0x" + data.hex(), "value": value}
        gas = None if self._in_process else await self._simulate(call)  # in process: one execution
        async with self._lock:
            for _ in range(3):
                try:
                    return await self._send_locked(to, data, value, gas, label, list(keys), call)
                except _NonceTakenError:
                    # another wallet used this key: its transactions hold these nonces now
                    chain_nonce = int(await self._rpc(self.web3.eth.get_transaction_count, self.address, "pending"))
                    self._next_nonce = max(chain_nonce, (self._next_nonce or 0) + 1)
            raise BroadcastRefusedError("nonces keep being taken by another sender using this key")

    async def _send_locked(
        self, to: str, data: bytes, value: int, gas: int | None, label: str, keys: list[str], call: dict[str, Any]
    ) -> Pending:
        """Signs, journals and broadcasts at the next nonce; the caller holds the nonce lock.
        `gas` None: an in-process node, where the broadcast is the simulation (step 2)."""
        if self._next_nonce is None or self._chain_id is None:
            raise RuntimeError("TxSender.start() must run before send()")
        nonce = self._next_nonce
        block = await self._rpc(self.web3.eth.get_block, "latest")
        fees = await self._fees(block)
        tx = {
            "to": to,
            "data": "0x" + data.hex(),
            "value": value,
            "gas": gas * 6 // 5 + 10_000 if gas is not None else await self._gas_it_can_pay(value, fees, block),
            "nonce": nonce,
            "chainId": self._chain_id,
            **fees,
        }
        raw, tx_hash = self._sign(tx)
        intent = await self.journal.call(
            self.journal.record_intent,
            self.intent_name,
            list(keys),
            {"nonce": nonce, "tx": tx, "raws": [raw.hex()], "hashes": [tx_hash.hex()], "label": label},
        )
        pending = Pending(intent, nonce, tx, [raw], [tx_hash], self._clock())
        try:
            # in process (gas None) the broadcast mines it (its receipt), or undoes a revert (False)
            mined = await self._broadcast(raw, first=True, undo_reverts=gas is None)
        except BroadcastRefusedError as refused:
            await self.journal.call(self.journal.complete_intent, intent, {"refused": str(refused)})
            raise
        except _NonceTakenError:
            if await self._known(tx_hash):
                self._next_nonce = nonce + 1  # it was ours after all (a retried broadcast)
                return pending
            await self.journal.call(self.journal.complete_intent, intent, {"refused": "nonce used elsewhere"})
            raise
        if mined is False:  # reverted and undone: nothing is on chain, the nonce is free again
            await self.journal.call(self.journal.complete_intent, intent, {"refused": "reverted, undone"})
            await self._simulate(call)  # names the revert: WouldRevertError
            raise BroadcastRefusedError(f"the call needs more than the {tx['gas']} gas this key can pay for")
        pending.receipt = mined
        self._next_nonce = nonce + 1
        return pending

    async def _gas_it_can_pay(self, value: int, fees: dict[str, int], block: Any) -> int:
        """An in-process node's gas limit: the latest `block`'s, or what the key can pay at `fees`."""
        balance = int(await self._rpc(self.web3.eth.get_balance, self.address))
        limit = min(int(block["gasLimit"]), (balance - value) // max(1, fees["maxFeePerGas"]))
        if limit < 21_000:
            raise BroadcastRefusedError(f"insufficient funds: {self.address} cannot pay for gas and {value} wei")
        return limit

    async def _fees(self, block: Any = None) -> dict[str, int]:
        """EIP-1559 fees over the latest block (read here unless given)."""
        if block is None:
            block = await self._rpc(self.web3.eth.get_block, "latest")
        base = int(block.get("baseFeePerGas") or 0)
        try:
            priority = int(
                await asyncio.get_running_loop().run_in_executor(self._executor, lambda: self.web3.eth.max_priority_fee)
            )
        except Exception:  # nodes without eth_maxPriorityFeePerGas
            priority = DEFAULT_PRIORITY_FEE
        priority = max(priority, 1)
        return {"maxFeePerGas": 2 * base + priority, "maxPriorityFeePerGas": priority}

    def _sign(self, tx: dict[str, Any]) -> tuple[bytes, bytes]:
        signed = self.account.sign_transaction(tx)
        raw = bytes(getattr(signed, "raw_transaction", None) or signed.rawTransaction)
        return raw, bytes(signed.hash)

    async def _broadcast(self, raw: bytes, *, first: bool = False, undo_reverts: bool = False) -> Any:
        """Sends `raw` (see step 2 for the errors). With `undo_reverts` (an in-process node): its
        receipt, or False if it reverted and was undone (`send_or_undo`); else None."""
        try:
            if undo_reverts:
                return await self._rpc(send_or_undo, self.web3, raw)
            await self._rpc(self.web3.eth.send_raw_transaction, raw)
        except Exception as error:
            message = _message(error)
            if any(known in message for known in ALREADY_KNOWN):
                return None
            if any(refused in message for refused in REFUSED):
                raise BroadcastRefusedError(f"the node refused the transaction: {error}") from error
            if any(used in message for used in NONCE_USED):
                if first:
                    raise _NonceTakenError(message) from error
                return None  # a version of this nonce is already mined: `wait` finds which
            raise
        return None

    # -- 3. wait ------------------------------------------------------------------------------

    async def _receipt(self, tx_hash: bytes) -> Any | None:
        from web3.exceptions import TransactionNotFound

        try:
            return await self._rpc(self.web3.eth.get_transaction_receipt, tx_hash)
        except TransactionNotFound:
            return None

    async def _known(self, tx_hash: bytes) -> bool:
        from web3.exceptions import TransactionNotFound

        try:
            await self._rpc(self.web3.eth.get_transaction, tx_hash)
        except TransactionNotFound:
            return False
        return True

    async def wait(self, pending: Pending) -> dict[str, Any]:
        """The receipt of whichever version of `pending` is mined (see step 3)."""
        if pending.receipt is not None:  # mined by its broadcast (in process): not read twice
            return await self._finish(pending, pending.hashes[-1], pending.receipt)
        started = self._clock()
        while True:
            for tx_hash in reversed(pending.hashes):
                receipt = await self._receipt(tx_hash)
                if receipt is not None:
                    return await self._finish(pending, tx_hash, receipt)
            now = self._clock()
            if now - started > self.deadline:
                raise TransactionTimeoutError(
                    f"nonce {pending.nonce}: no receipt after {self.deadline:.0f}s for {len(pending.hashes)} version(s)"
                )
            if not await self._known(pending.hashes[-1]):
                await self._broadcast(pending.raws[-1])  # dropped from the pool: the same bytes again
            elif now - pending.sent_at >= self.stuck_after:
                await self._replace(pending)
            await asyncio.sleep(self.poll)

    async def _replace(self, pending: Pending) -> None:
        factor = 1.0 + self.bump
        tx = dict(pending.tx)
        fresh = await self._fees()
        tx["maxPriorityFeePerGas"] = max(int(tx["maxPriorityFeePerGas"] * factor) + 1, fresh["maxPriorityFeePerGas"])
        tx["maxFeePerGas"] = max(
            int(tx["maxFeePerGas"] * factor) + 1, fresh["maxFeePerGas"], tx["maxPriorityFeePerGas"]
        )
        raw, tx_hash = self._sign(tx)
        pending.tx, pending.sent_at = tx, self._clock()
        pending.raws.append(raw)
        pending.hashes.append(tx_hash)
        await self.journal.call(
            self.journal.update_intent,
            pending.intent,
            {"tx": tx, "raws": [r.hex() for r in pending.raws], "hashes": [h.hex() for h in pending.hashes]},
        )
        self.replacements += 1
        try:
            await self._broadcast(raw)
        except Exception as error:
            if "underpriced" not in _message(error):
                raise
            # the node wants more: the next round bumps again from these fees

    async def _finish(self, pending: Pending, tx_hash: bytes, receipt: Any) -> dict[str, Any]:
        outcome = {
            "hash": tx_hash.hex(),
            "block": int(receipt["blockNumber"]),
            "status": int(receipt["status"]),
            "gasUsed": int(receipt["gasUsed"]),
        }
        await self.journal.call(self.journal.complete_intent, pending.intent, outcome)
        if outcome["status"] != 1:
            raise RevertedOnChainError(f"nonce {pending.nonce} ({tx_hash.hex()}) was mined but reverted")
        return dict(receipt)

    async def send_and_wait(self, to: str, data: bytes, **options: Any) -> dict[str, Any]:
        return await self.wait(await self.send(to, data, **options))
