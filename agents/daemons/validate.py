"""ERC-8004 validation of proven work: after the prover attests a chunk, its agent asks
proofmint's zkML validator (`ZkmlValidator`) about the chunk in the Validation Registry, and the
validator answers from the attestations: one request and one response per chunk, whatever its
size (`agents.core.validation`: the request hash is the Merkle root over the chunk's assets).

Lifecycle of one chunk (`Validations`):
1. `note`: the chunk's assets, grouped by proven verdict (a request has one), are written down as
   journal intents (`INTENT`) before anything is sent, keyed by the jobs.
2. `drain` gathers waiting intents of one agent, model version and verdict into one request of
   up to `MAX_ASSETS` assets, once `Gathering.min_assets` of them wait or the oldest has waited
   `Gathering.linger_s` (the prover drains after each chunk and whenever it is idle), so what a
   validation costs is shared by the gathered chunks. The gathering is written into its intents
   (`group`) before anything is sent: a later life sends the same request.
3. For each gathering, the request hash is its root sealed with the agent and
   a salt only this prover can compute (`agents.core.validation.salt_for`: an HMAC under its
   key); `validationRequest(validator, agentId, requestURI, hash)` from the prover's key (its
   agent's owner or operator), then `ZkmlValidator.respond`. A request that exists already for
   this agent and validator (a crash between), or an answer already given (anyone may answer),
   counts as sent. A hash someone else requested first (a copy front-run from the mempool: it
   never matches their agent, but it blocks ours) is left behind and the next salt is tried, up
   to `SALT_ATTEMPTS`. Each gathered intent is completed with the hash, the response and both
   transactions.
4. Recovery: open intents are drained again on the next drain; jobs found attested by an earlier
   life that has no intent naming them (a crash between the attestation and `note`) are noted
   then, grouped by the transaction that attested them.
A validation the validator refuses (its assets are not the agent's work, say) completes its
intent as `refused` with the reason and never holds up the attestation: validation follows the
proof, it does not gate it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from agents.core.errors import PermanentError
from agents.core.reverts import WouldRevertError
from agents.core.validation import MAX_ASSETS, ValidationDomain, request_hash_of, salt_for
from agents.deploy.erc8004 import VALIDATION, VALIDATOR
from agents.runtime.chain import ChainClient, tx_hash_hex
from agents.runtime.journal import Intent, Journal

INTENT: Final = "erc8004-validation"
REGISTRY: Final = "ProvenanceRegistry"
SALT_ATTEMPTS: Final = 4
"""Salts tried before a chunk's validation is given up as squatted (each needs a front-runner)."""

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ValidationTarget:
    """Whose work it is and where requests point: the agent (ERC-8004 id) the prover's key owns or
    operates, the API base URL whose /v1/validations/ serves the requests, and the chain."""

    agent_id: int
    public_url: str
    chain_id: int


@dataclass(frozen=True)
class Gathering:
    """When waiting validations are sent: once `min_assets` assets of one agent, model version
    and verdict wait, or the oldest of them has waited `linger_s` seconds (defaults: at once)."""

    min_assets: int = 1
    linger_s: float = 0.0


@dataclass(frozen=True)
class ProvenChunk:
    """Assets one `attestInference` attested: job keys, content digests and verdicts in order."""

    model_id: int
    keys: Sequence[str]
    digests: Sequence[bytes]
    verdicts: Sequence[str]


class Validations:
    """See the module docstring."""

    def __init__(
        self, journal: Journal, client: ChainClient, target: ValidationTarget, gathering: Gathering = Gathering()
    ) -> None:
        self.journal, self.client, self.target, self.gathering = journal, client, target, gathering
        self._draining = asyncio.Lock()
        self.domain = ValidationDomain(
            target.chain_id, str(client.contract(VALIDATOR).address), str(client.contract(REGISTRY).address)
        )

    async def note(self, chunk: ProvenChunk) -> list[int]:
        """Writes one intent per verdict among the chunk's assets (step 1); returns their ids."""
        groups: dict[str, list[int]] = {}
        for index, verdict in enumerate(chunk.verdicts):
            groups.setdefault(verdict, []).append(index)
        ids: list[int] = []
        for verdict, members in groups.items():
            assets = [chunk.digests[i] for i in members]
            batch = self.domain.batch(chunk.model_id, assets)
            data = {
                "model_id": chunk.model_id,
                "assets": [a.hex() for a in assets],
                "verdict": verdict,
                "root": batch.root.hex(),
                "agent_id": self.target.agent_id,
                "noted_at": time.time(),
            }
            keys = [chunk.keys[i] for i in members]
            ids.append(await self.journal.call(self.journal.record_intent, INTENT, keys, data))
        return ids

    async def unnoted(self, keys: Sequence[str]) -> set[str]:
        """The keys among `keys` that no validation intent names yet (recovery)."""
        named = await self.journal.call(self.journal.intent_keys, INTENT)
        return {key for key in keys if key not in named}

    async def drain(self, *, flush: bool = False) -> list[dict[str, Any]]:
        """Sends what is due (steps 2 and 3; `flush`: everything waiting); returns the outcomes.
        A retryable failure (the node down) leaves the rest open for the next call and is
        logged, never raised: the attestations it follows are done either way."""
        async with self._draining:
            outcomes: list[dict[str, Any]] = []
            for group in await self._gather(flush):
                try:
                    outcome = await self._send(group)
                except PermanentError as error:
                    outcome = {"refused": str(error), "intents": [i.id for i in group]}
                    log.warning("validation of intents %s refused: %s", [i.id for i in group], error)
                except Exception as error:  # retryable (the node down): the rest wait for the next drain
                    log.warning("validation of intents %s not sent yet: %s", [i.id for i in group], error)
                    break
                for intent in group:
                    await self.journal.call(self.journal.complete_intent, intent.id, outcome)
                outcomes.append(outcome)
            return outcomes

    async def _gather(self, flush: bool) -> list[list[Intent]]:
        """The groups to send now: those gathered before (a crash between), then new gatherings
        of waiting intents that are due, written down before they are sent."""
        mine = [
            i
            for i in await self.journal.call(self.journal.open_intents, INTENT)
            if int(i.data["agent_id"]) == self.target.agent_id
        ]
        gathered: dict[int, list[Intent]] = {}
        waiting: dict[tuple[int, str], list[Intent]] = {}
        for intent in mine:
            if "group" in intent.data:
                gathered.setdefault(int(intent.data["group"]), []).append(intent)
            else:
                waiting.setdefault((int(intent.data["model_id"]), str(intent.data["verdict"])), []).append(intent)
        groups = list(gathered.values())
        now = time.time()
        for bucket in waiting.values():
            count = sum(len(i.data["assets"]) for i in bucket)
            oldest = min(float(i.data.get("noted_at", 0.0)) for i in bucket)
            if not (flush or count >= self.gathering.min_assets or now - oldest >= self.gathering.linger_s):
                continue
            for group in _pack(bucket):
                for member in group:
                    await self.journal.call(self.journal.update_intent, member.id, {"group": group[0].id})
                groups.append(group)
        return groups

    async def _send(self, group: Sequence[Intent]) -> dict[str, Any]:
        model_id = int(group[0].data["model_id"])
        agent_id = int(group[0].data["agent_id"])
        assets = [bytes.fromhex(a) for intent in group for a in intent.data["assets"]]
        root = self.domain.batch(model_id, assets).root
        key = bytes(self.client.account.key)
        for attempt in range(SALT_ATTEMPTS):
            salt = salt_for(key, self.domain, root, attempt)
            request_hash = request_hash_of(agent_id, salt, root)
            sent: dict[str, Any] = {"request_hash": request_hash.hex(), "assets": len(assets), "attempt": attempt}
            if not await self._request(request_hash, agent_id, sent):
                log.warning(
                    "validation 0x%s was requested by someone else first: trying another salt", request_hash.hex()
                )
                continue
            try:
                receipt = await self.client.transact(
                    VALIDATOR, "respond", request_hash, salt, model_id, assets, label="ZkmlValidator.respond"
                )
                sent["response_tx"], sent["response_gas"] = (
                    tx_hash_hex(receipt["transactionHash"]),
                    int(receipt["gasUsed"]),
                )
            except WouldRevertError as error:
                if "AlreadyAnswered" not in str(error):
                    raise
            answered, response, *_ = await self.client.call(VALIDATOR, "answerOf", request_hash)
            if not answered:
                raise PermanentError(f"validation 0x{request_hash.hex()} is still unanswered after respond")
            sent["response"] = int(response)
            return sent
        raise PermanentError(f"every salt tried for root 0x{root.hex()} was requested by someone else first")

    async def _request(self, request_hash: bytes, agent_id: int, sent: dict[str, Any]) -> bool:
        """Requests `request_hash` for the agent; True once the registry holds it as this agent's
        request to this validator (just now, or by an earlier life), False when someone else's
        request holds the hash."""
        validator = self.client.contract(VALIDATOR).address
        uri = f"{self.target.public_url.rstrip('/')}/v1/validations/0x{request_hash.hex()}"
        try:
            receipt = await self.client.transact(
                VALIDATION, "validationRequest", validator, agent_id, uri, request_hash, label="validationRequest"
            )
            sent["request_tx"], sent["request_gas"] = tx_hash_hex(receipt["transactionHash"]), int(receipt["gasUsed"])
            return True
        except WouldRevertError as error:
            if "RequestExists" not in str(error):
                raise
        holder, holder_agent, *_ = await self.client.call(VALIDATION, "getValidationStatus", request_hash)
        return str(holder).lower() == str(validator).lower() and int(holder_agent) == agent_id


def _pack(bucket: Sequence[Intent]) -> list[list[Intent]]:
    """Consecutive intents in groups of at most `MAX_ASSETS` assets (an intent is one chunk's,
    never more than a proof covers, so it always fits a group)."""
    groups: list[list[Intent]] = []
    size = MAX_ASSETS
    for intent in bucket:
        count = len(intent.data["assets"])
        if size + count > MAX_ASSETS:
            groups.append([])
            size = 0
        groups[-1].append(intent)
        size += count
    return groups
