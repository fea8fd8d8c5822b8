"""Paid on-chain requests: `GenerationMarket` events in, generation jobs out; registered assets
delivered back to the market.

`MarketWatcher` reads `GenerationRequested` at a confirmation depth through the event watcher
(checkpointed, backfilled after downtime, reorgs unwound) and journals each request as a job
keyed by market and request id, so an event delivered twice is one job, in the lane the request
paid for (`lane`: `standard` or `fast`, as the API's requests carry it). The requester becomes
the asset's creator when it approved the agent as its registrar; otherwise the operator is. A
request removed by a reorg before generation starts is cancelled. A request whose parameters the
models refuse is left for its requester to refund after the deadline.

`DeliverStage` (`registered` -> `delivered`) fulfils each market job's request with its asset;
other jobs pass straight through. Before sending it reads the request, so a request already
fulfilled with this asset (a crash after the transaction) is not fulfilled again; a request that
lapsed, was refunded or vanished is recorded on the job and the asset goes on to the prover.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Final

from eth_abi.abi import decode
from eth_abi.exceptions import DecodingError
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from agents.core import costs
from agents.core.metering import FAST_LANE, STANDARD_LANE
from agents.core.requests import GenerationRequest, GeneratorError
from agents.core.reverts import WouldRevertError
from agents.runtime import jobs
from agents.runtime.chain import ChainClient, tx_hash_hex
from agents.runtime.events import ChainEvent, EventWatcher
from agents.runtime.journal import Job, Journal, StaleJobError
from agents.runtime.stage import Done, Outcome, Stage

log = logging.getLogger("proofmint.market")

MARKET: Final = "GenerationMarket"
REQUESTED_TOPIC: Final = (
    "0x" + keccak(text="GenerationRequested(uint256,address,uint8,uint256,uint64,uint64,uint32,uint32,string)").hex()
)
_DATA_TYPES: Final = ["uint8", "uint256", "uint64", "uint64", "uint32", "uint32", "string"]
_STATUS: Final = {0: "none", 1: "open", 2: "fulfilled", 3: "refunded"}
LANES_ON_CHAIN: Final = (STANDARD_LANE, FAST_LANE)
"""`IGenerationMarket.Lane` in declaration order: the enum value is the index."""
_REQUEST_REQUESTER, _REQUEST_FEE, _REQUEST_STATUS, _REQUEST_LANE, _REQUEST_ASSET = 0, 1, 3, 4, 6
"""Where `getRequest`'s tuple holds each field (requester, fee, deadline, status, lane,
assetsBefore, asset)."""


def market_key(chain_id: int, market: str, request_id: int) -> str:
    return f"market-{chain_id}-{market.lower()}-{request_id}"


def decode_request(event: ChainEvent) -> tuple[int, str, GenerationRequest, dict[str, Any]]:
    """(request id, requester, request, facts) of a `GenerationRequested` log (facts include its
    `lane`); `GeneratorError` when the models cannot take its parameters, `ValueError` for a lane
    the market does not have."""
    if len(event.topics) != 3:
        raise ValueError(f"a GenerationRequested log has 3 topics, this one {len(event.topics)}")
    request_id = int(event.topics[1], 16)
    requester = to_checksum_address("0x" + event.topics[2][-40:])
    try:
        lane, fee, deadline, seed, steps, guidance_milli, prompt = decode(_DATA_TYPES, event.data)
    except DecodingError as error:  # not the market's encoding: skipped, never a poison pill
        raise ValueError(f"undecodable GenerationRequested data: {error}") from None
    if not 0 <= lane < len(LANES_ON_CHAIN):
        raise ValueError(f"lane {lane} is not one of the market's {len(LANES_ON_CHAIN)} lanes")
    request = GenerationRequest(prompt=prompt, seed=int(seed), steps=int(steps), guidance=guidance_milli / 1_000)
    facts = {
        "lane": LANES_ON_CHAIN[lane],
        "fee": str(fee),
        "deadline": int(deadline),
        "block": event.block_number,
        "tx": event.tx_hash,
    }
    return request_id, requester, request, facts


#: What identifies a market request beyond its id (which a reorg can give to another request).
_IDENTITY: Final = ("requester", "fee", "lane", "request")


def same_request(journaled: Mapping[str, Any], seen: Mapping[str, Any]) -> bool:
    """Whether a journaled market job and a request seen on chain are the same request: the same
    requester, fee, lane and prompt and parameters."""
    return all(journaled.get(name) == seen.get(name) for name in _IDENTITY)


def stored_is(stored: Sequence[Any], payload: Mapping[str, Any]) -> bool:
    """Whether the request stored on chain (`getRequest`) is the one a job was made for: its
    requester, fee and lane (a reorg can give the id to another request)."""
    if "requester" not in payload or "fee" not in payload:
        return True  # an older job without the facts: as before
    lanes = {name: index for index, name in enumerate(LANES_ON_CHAIN)}
    return (
        str(stored[_REQUEST_REQUESTER]).lower() == str(payload["requester"]).lower()
        and int(stored[_REQUEST_FEE]) == int(payload["fee"])
        and int(stored[_REQUEST_LANE]) == lanes.get(str(payload.get("lane", STANDARD_LANE)), -1)
    )


class MarketWatcher:
    """See the module docstring."""

    def __init__(self, journal: Journal, client: ChainClient, *, confirmations: int = 2, start_block: int = 0) -> None:
        self.journal, self.client = journal, client
        self.market = client.contract(MARKET).address
        self.watcher = EventWatcher(
            f"market:{self.market.lower()}",
            client.web3,
            journal,
            address=self.market,
            topics=[REQUESTED_TOPIC],
            on_event=self.on_event,
            on_removed=self.on_removed,
            confirmations=confirmations,
            start_block=start_block,
        )
        self._chain_id: int | None = None

    async def _key(self, request_id: int) -> str:
        if self._chain_id is None:
            self._chain_id = int(await self.client.node(lambda: self.client.web3.eth.chain_id))
        return market_key(self._chain_id, self.market, request_id)

    async def on_event(self, event: ChainEvent) -> None:
        if event.address.lower() != self.market.lower():  # the node's filter is not trusted alone
            log.warning("a GenerationRequested log from %s, not the market %s: skipped", event.address, self.market)
            return
        try:
            request_id, requester, request, facts = decode_request(event)
        except (GeneratorError, ValueError) as error:
            log.warning("market request the models cannot take: %s (the requester may refund)", error)
            return
        approved = await self.client.call("ProvenanceRegistry", "isRegistrar", requester, self.client.address)
        extra = {"market_request": request_id, "market": self.market, **facts}
        if approved:
            extra["creator"] = requester
        key = await self._key(request_id)
        payload = {**jobs.request_payload(request, requester=requester, source="chain"), **extra}
        if await self.journal.call(
            self.journal.submit, key, jobs.ASSET, payload, stage=jobs.REQUESTED, deadline_s=jobs.REGISTRATION_DEADLINE_S
        ):
            return
        # journaled before: the same request mined again after a reorg took it out is served again;
        # another request that took its id in the reorg is not this job (delivery refuses it)
        known = await self.journal.call(self.journal.get, key)
        if known is not None and known.stage == jobs.CANCELLED and same_request(known.payload, payload):
            try:
                await self.journal.call(self.journal.advance, [key], jobs.CANCELLED, jobs.REQUESTED)
            except StaleJobError:
                return
            log.info("market request %s mined again after a reorg: requested again", key)
        elif known is not None and not same_request(known.payload, payload):
            log.warning("market request %s now names another request (a reorg): its job will not deliver to it", key)

    async def on_removed(self, event: ChainEvent) -> None:
        request_id = int(event.topics[1], 16)
        key = await self._key(request_id)
        job = await self.journal.call(self.journal.get, key)
        if job is not None and job.stage == jobs.REQUESTED:
            stored = await self.client.call(MARKET, "getRequest", request_id)
            if _STATUS.get(int(stored[_REQUEST_STATUS])) == "open" and stored_is(stored, job.payload):
                log.info("market request %s was reorged out and mined again: still requested", key)
                return
        try:
            await self.journal.call(self.journal.advance, [key], jobs.REQUESTED, jobs.CANCELLED)
        except StaleJobError:
            log.warning("market request %s was reorged out after work began; delivery will say so", key)

    async def poll(self) -> int:
        return await self.watcher.poll()


class DeliverStage(Stage):
    name = "deliver"
    origin = jobs.REGISTERED
    target = jobs.DELIVERED
    give_up = jobs.FAILED

    def __init__(self, journal: Any, client: ChainClient, **options: Any) -> None:
        super().__init__(journal, **options)
        self.client = client

    async def process(self, batch: Sequence[Job]) -> Sequence[Outcome]:
        outcomes: list[Outcome] = []
        for job in batch:
            request_id = job.payload.get("market_request")
            if request_id is None:
                outcomes.append(Done(job.key))
                continue
            delivery, cost = await self._deliver(int(request_id), job)
            outcomes.append(Done(job.key, {"delivery": delivery, **cost}))
        return outcomes

    async def _deliver(self, request_id: int, job: Job) -> tuple[str, dict[str, Any]]:
        """What became of the market request, and the cost record of the `fulfill` transaction
        that settled it here (a settlement cost of the asset; none where nothing was sent)."""
        asset = bytes.fromhex(job.payload["sha256"])
        market = str(self.client.contract(MARKET).address)
        if str(job.payload.get("market", market)).lower() != market.lower():
            return "market replaced", {}  # a request of another market: never fulfil this one's same id
        stored = await self.client.call(MARKET, "getRequest", request_id)
        status, delivered = _STATUS.get(int(stored[_REQUEST_STATUS]), "unknown"), bytes(stored[_REQUEST_ASSET])
        if status == "open" and not stored_is(stored, job.payload):
            return "request replaced", {}  # a reorg gave the id to another request: not this image's
        if status == "fulfilled":
            return ("fulfilled" if delivered == asset else "fulfilled with another asset"), {}
        if status != "open":
            return ("request gone" if status == "none" else status), {}
        try:
            receipt = await self.client.transact(MARKET, "fulfill", request_id, asset, keys=[job.key])
        except WouldRevertError as error:
            if "Expired" in str(error):
                return "expired", {}
            raise
        tx = tx_hash_hex(receipt["transactionHash"])
        return "fulfilled", {costs.SETTLE: costs.transaction_share(receipt, tx, 1)}
