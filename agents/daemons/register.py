"""The registrar daemon: published assets go on chain in batches, one of two ways.

`RegisterStage` (the default, `published` -> `registered`) registers up to `batch` assets, by
size or after `linger_s`, in one `registerMany` transaction: every asset gets its full record,
token and registration number at once. Outbox order: an intent naming the jobs and their
digests is journaled before sending; the jobs' move (with their registration numbers from the
receipt's `AssetRegistered` events) and the intent's completion are one journal transaction
after it. A batch that would revert is split, so one bad asset never holds up the others; an
asset the chain already has is moved on without a transaction. `reconcile()` settles an open
intent by asking the chain which of its assets exist.

Or commit, then claim (for batches whose leaves travel in calldata and whose members are
claimed later, by anyone):
1. `CommitStage` (`published` -> `committed`) takes up to `batch` jobs, by size or after
   `linger_s`, builds each one's `AssetInput` and commits their leaves in one
   `registerBatchLeaves` transaction. Outbox order: an intent naming the jobs, the leaves, the
   root and the block it starts from is journaled *before* sending; the jobs' move to `committed`
   (with batch id, index and Merkle proof) and the intent's completion are one journal
   transaction after the receipt.
2. `ClaimStage` (`committed` -> `registered`) turns each member into a full record and token
   with `claimFromBatch` (sent together, one nonce each), and records its registration number.

Nothing is registered twice: an asset the chain already has in the job's creator's name is
moved on without a transaction (looked up before every commit and claim; a claim that would
revert with `AlreadyRegistered` is treated the same), and `reconcile()` (run after the sender's
own reconciliation, before any new work) finds each open batch intent's `BatchCommitted` event
by submitter and root: a batch that was committed is journaled as such, one that never was is
forgotten and its jobs are batched again.

Squatters: the digest of published content is public, so someone else may register it first.
Whose asset the chain has is always checked. Found in another creator's name before a commit
(or before `registerMany`), the job fails naming the squatter: nothing registered earlier can be
taken back. Found after the job's batch was committed, the claim is sent anyway: the registry
lets an earlier commitment take the record over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any, Final

from eth_utils.address import to_checksum_address

from agents.core import costs
from agents.core.errors import PermanentError
from agents.core.merkle import AssetRecord, BatchTree
from agents.core.reverts import WouldRevertError
from agents.runtime import jobs
from agents.runtime.chain import ChainClient, tx_hash_hex
from agents.runtime.journal import Job, StaleJobError
from agents.runtime.sender import RevertedOnChainError
from agents.runtime.stage import Done, Failed, Journaled, Outcome, Stage

log = logging.getLogger("proofmint.registrar")

INTENT: Final = "registrar:batch"
MANY_INTENT: Final = "registrar:many"
REGISTRY: Final = "ProvenanceRegistry"


def record_of(job: Job, model_id: int, default_creator: str) -> AssetRecord:
    """The registration record of a published job: under `model_id` (the generator's version)
    unless the job names its own (an upscale: the upscaler's), with its parents (sorted, as the
    registry wants them) and a licence of each."""
    payload = job.payload
    licences = dict(zip(payload.get("parents", ()), payload.get("license_ids", ()), strict=True))
    parents = tuple(sorted(licences))
    return AssetRecord(
        content_digest=bytes.fromhex(payload["sha256"]),
        creator=str(payload.get("creator") or default_creator),
        model_id=int(payload.get("register_model_id") or model_id),
        params_digest=bytes.fromhex(payload["params_digest"]),
        input_commitment=bytes.fromhex(payload["commitment"]),
        parents=tuple(bytes.fromhex(p) for p in parents),
        metadata_uri=payload["metadata_uri"],
        license_ids=tuple(int(licences[p]) for p in parents),
    )


async def registered_as(client: ChainClient, digest: bytes) -> tuple[int, str] | None:
    """The asset's registration number and creator, or None when the chain does not have it."""
    if not await client.read(REGISTRY, "exists", digest):
        return None
    asset = await client.read(REGISTRY, "getAsset", digest)
    return int(asset[4]), to_checksum_address(str(asset[0]))


async def registered_seq(client: ChainClient, digest: bytes, creator: str) -> int | None:
    """The asset's registration number when the chain has it in `creator`'s name; None when the
    chain does not have it; SquattedError when someone else registered it."""
    found = await registered_as(client, digest)
    if found is None:
        return None
    seq, holder = found
    if holder != to_checksum_address(creator):
        raise SquattedError(digest, holder)
    return seq


class SquattedError(PermanentError):
    """The chain has the asset in another creator's name."""

    def __init__(self, digest: bytes, holder: str) -> None:
        super().__init__(f"asset 0x{digest.hex()} is registered by {holder}, not by this job's creator")
        self.holder = holder


class _RegistrarStage(Stage):
    """A registrar stage: it sends through `client` and registers under `model_id`."""

    give_up = jobs.FAILED

    def __init__(self, journal: Any, client: ChainClient, *, model_id: int, **options: Any) -> None:
        super().__init__(journal, **options)
        self.client, self.model_id = client, model_id


class CommitStage(_RegistrarStage):
    name = "registrar-commit"
    origin = jobs.PUBLISHED
    target = jobs.COMMITTED

    async def process(self, batch: Sequence[Job]) -> Sequence[Outcome]:
        outcomes: list[Outcome] = []
        fresh: list[Job] = []
        for job in batch:
            record = record_of(job, self.model_id, self.client.address)
            try:
                seq = await registered_seq(self.client, record.content_digest, record.creator)
            except SquattedError as error:  # registered before any commitment of ours: final
                outcomes.append(Failed(job.key, str(error), retryable=False))
                continue
            if seq is None:
                fresh.append(job)
            else:
                outcomes.append(Done(job.key, {"seq": seq}, stage=jobs.REGISTERED))
        if not fresh:
            return outcomes
        records = [record_of(job, self.model_id, self.client.address) for job in fresh]
        tree = BatchTree([record.leaf() for record in records])
        keys = [job.key for job in fresh]
        start = await self.client.block_number()
        intent = await self.journal.call(
            self.journal.record_intent,
            INTENT,
            keys,
            {"root": tree.root.hex(), "leaves": [leaf.hex() for leaf in tree.leaves], "from_block": start},
        )
        receipt = await self.client.transact(REGISTRY, "registerBatchLeaves", list(tree.leaves), keys=keys)
        (event,) = self.client.logs(REGISTRY, "BatchCommitted", receipt)
        share = costs.transaction_share(receipt, tx_hash_hex(receipt["transactionHash"]), len(keys))
        updates = await self._journal_batch(
            intent, keys, tree, int(event["args"]["batchId"]), origin_owner=self.worker, cost=share
        )
        return [*outcomes, *(Journaled(key, jobs.COMMITTED, updates[key]) for key in keys)]

    async def _journal_batch(
        self,
        intent: int,
        keys: Sequence[str],
        tree: BatchTree,
        batch_id: int,
        *,
        origin_owner: str | None,
        cost: dict[str, Any] | None = None,
    ) -> dict[str, dict[str, Any]]:
        updates = {
            key: {
                "batch_id": batch_id,
                "index": index,
                "leaf_count": len(tree.leaves),
                "proof": [sibling.hex() for sibling in tree.proof(index)],
                **({costs.REGISTER: cost} if cost is not None and self.cost_records else {}),
            }
            for index, key in enumerate(keys)
        }
        await self.journal.call(
            self.journal.advance,
            keys,
            jobs.PUBLISHED,
            jobs.COMMITTED,
            owner=origin_owner,
            updates=updates,
            complete_intent=(intent, {"batch_id": batch_id}),
        )
        return updates

    async def reconcile(self) -> dict[str, int]:
        """Settles every open batch intent against the chain (see the module docstring)."""
        found = forgotten = 0
        for intent in await self.journal.call(self.journal.open_intents, INTENT):
            root = bytes.fromhex(intent.data["root"])
            events = await self.client.get_logs(
                REGISTRY,
                "BatchCommitted",
                from_block=int(intent.data["from_block"]),
                argument_filters={"submitter": self.client.address, "root": root},
            )
            if not events:
                await self.journal.call(self.journal.complete_intent, intent.id, {"batch_id": None})
                forgotten += 1
                continue
            tree = BatchTree([bytes.fromhex(leaf) for leaf in intent.data["leaves"]])
            waiting = []
            for key in intent.keys:
                job = await self.journal.call(self.journal.get, key)
                if job is not None and job.stage == jobs.PUBLISHED:
                    waiting.append(key)
            batch_id = int(events[0]["args"]["batchId"])
            if waiting and len(waiting) != len(intent.keys):
                log.warning(
                    "batch %s: %d of %d jobs moved on already",
                    batch_id,
                    len(intent.keys) - len(waiting),
                    len(intent.keys),
                )
            try:
                if len(waiting) == len(intent.keys):
                    await self._journal_batch(intent.id, intent.keys, tree, batch_id, origin_owner=None)
                else:
                    await self.journal.call(self.journal.complete_intent, intent.id, {"batch_id": batch_id})
            except StaleJobError:
                await self.journal.call(self.journal.complete_intent, intent.id, {"batch_id": batch_id})
            found += 1
        return {"committed": found, "forgotten": forgotten}


class ClaimStage(_RegistrarStage):
    name = "registrar-claim"
    origin = jobs.COMMITTED
    target = jobs.REGISTERED

    async def process(self, batch: Sequence[Job]) -> Sequence[Outcome]:
        return list(await asyncio.gather(*(self._claim(job) for job in batch)))

    async def _claim(self, job: Job) -> Outcome:
        record = record_of(job, self.model_id, self.client.address)
        digest = record.content_digest
        try:
            seq = await registered_seq(self.client, digest, record.creator)
        except SquattedError as error:
            # Registered by someone else since our commitment: the claim takes it over.
            log.warning("%s; claiming it back with batch %s", error, job.payload["batch_id"])
            seq = None
        if seq is None:
            proof = [bytes.fromhex(sibling) for sibling in job.payload["proof"]]
            args: tuple[Any, ...] = (
                int(job.payload["batch_id"]),
                int(job.payload["index"]),
                record.as_tuple(),
                proof,
                list(record.license_ids),
            )
            try:
                await self.client.transact(REGISTRY, "claimFromBatch", *args, keys=[job.key])
            except WouldRevertError as error:
                if "AlreadyRegistered" not in str(error):
                    return Failed(job.key, str(error), retryable=False)
            try:
                seq = await registered_seq(self.client, digest, record.creator)
            except SquattedError as error:  # registered by someone else before our commitment
                return Failed(job.key, str(error), retryable=False)
            if seq is None:
                return Failed(job.key, "claimed, yet the chain does not have the asset", retryable=True)
        return Done(job.key, {"seq": seq})


class RegisterStage(_RegistrarStage):
    name = "registrar"
    origin = jobs.PUBLISHED
    target = jobs.REGISTERED

    async def process(self, batch: Sequence[Job]) -> Sequence[Outcome]:
        return await self._register(list(batch))

    async def _register(self, batch: list[Job]) -> list[Outcome]:
        records = [record_of(job, self.model_id, self.client.address) for job in batch]
        keys = [job.key for job in batch]
        intent = await self.journal.call(
            self.journal.record_intent,
            MANY_INTENT,
            keys,
            {
                "digests": [r.content_digest.hex() for r in records],
                "creators": [r.creator for r in records],
                "from_block": await self.client.block_number(),
            },
        )
        try:
            receipt = await self.client.transact(
                REGISTRY,
                "registerMany",
                [r.as_tuple() for r in records],
                [list(r.license_ids) for r in records],
                keys=keys,
            )
        except (WouldRevertError, RevertedOnChainError) as error:
            # refused before sending, or mined but reverted (the chain changed between the
            # simulation and inclusion: a squatter got in first, or a batch in flight beside
            # this one registered the same content): nothing of it is on chain
            await self.journal.call(self.journal.complete_intent, intent, {"refused": str(error)})
            return await self._isolate(batch, str(error))
        seqs = {
            bytes(e["args"]["contentDigest"]): int(e["args"]["seq"])
            for e in self.client.logs(REGISTRY, "AssetRegistered", receipt)
        }
        tx = receipt["transactionHash"]
        tx_hex = tx.hex() if hasattr(tx, "hex") else str(tx)
        share = costs.transaction_share(receipt, tx_hash_hex(tx), len(batch))
        updates = {
            job.key: {
                "seq": seqs[record.content_digest],
                "register_tx": tx_hex,
                "register_batch": len(batch),
                "registered_creator": record.creator,
                **({costs.REGISTER: share} if self.cost_records else {}),
            }
            for job, record in zip(batch, records, strict=True)
        }
        await self._journal_registered(intent, keys, updates)
        return [Journaled(key, jobs.REGISTERED, updates[key]) for key in keys]

    async def _journal_registered(self, intent: int, keys: list[str], updates: dict[str, dict[str, Any]]) -> None:
        await self.journal.call(
            self.journal.advance,
            keys,
            jobs.PUBLISHED,
            jobs.REGISTERED,
            owner=self.worker,
            updates=updates,
            complete_intent=(intent, {"registered": len(keys)}),
        )

    async def _isolate(self, batch: list[Job], error: str) -> list[Outcome]:
        """After a refused batch: move on what the chain has, and try the rest alone."""
        outcomes: list[Outcome] = []
        rest: list[Job] = []
        for job in batch:
            record = record_of(job, self.model_id, self.client.address)
            try:
                seq = await registered_seq(self.client, record.content_digest, record.creator)
            except SquattedError as squatted:
                outcomes.append(Failed(job.key, str(squatted), retryable=False))
                continue
            if seq is None:
                rest.append(job)
            else:
                outcomes.append(Done(job.key, {"seq": seq}))
        if len(rest) == 1 and len(batch) == 1:
            return [Failed(rest[0].key, error, retryable=False)]
        if len(rest) == len(batch) and len(batch) > 1:
            for job in rest:  # nothing was registered elsewhere: find the member(s) at fault
                outcomes += await self._register([job])
            return outcomes
        if rest:
            outcomes += await self._register(rest)
        return outcomes

    async def reconcile(self) -> dict[str, int]:
        """Settles every open `registerMany` intent: its assets the chain has are journaled as
        registered; an intent with none of them on chain was never sent and is forgotten."""
        found = forgotten = 0
        for intent in await self.journal.call(self.journal.open_intents, MANY_INTENT):
            registered = 0
            creators = intent.data.get("creators") or [self.client.address] * len(intent.keys)
            for key, digest, creator in zip(intent.keys, intent.data["digests"], creators, strict=True):
                try:
                    seq = await registered_seq(self.client, bytes.fromhex(digest), creator)
                except SquattedError as error:  # not ours: the job fails when it is retried
                    log.warning("reconciling a registerMany: %s", error)
                    continue
                if seq is None:
                    continue
                registered += 1
                job = await self.journal.call(self.journal.get, key)
                if job is not None and job.stage == jobs.PUBLISHED:
                    with contextlib.suppress(StaleJobError):  # moved on meanwhile: nothing to do
                        await self.journal.call(
                            self.journal.advance, [key], jobs.PUBLISHED, jobs.REGISTERED, updates={key: {"seq": seq}}
                        )
            await self.journal.call(self.journal.complete_intent, intent.id, {"registered": registered})
            if registered:
                found += 1
            else:
                forgotten += 1
        return {"registered": found, "forgotten": forgotten}
