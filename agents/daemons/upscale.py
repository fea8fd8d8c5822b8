"""The upscaler daemon: high resolution in a second, decoupled stage.

Every base asset the pipeline registers (a job of kind `asset` that reached `registered`, not
itself an upscale) gets a job of its own, `up-<base key>`, at `upscale-waiting` (`spawn`: the
stage reads the journal's transitions past its cursor; submission is idempotent, so reading some
twice doubles nothing). The stage then, for each such job:

1. ends it `cancelled`, saying why, where the base is not the operator's to derive from (another
   creator: only an asset's creator licenses derivatives of it here);
2. holds a derivative licence of the base: the operator's upscale terms on the base (found among
   the base's `TermsAttached` events, else attached: perpetual, `UpscaleTerms`' price and royalty
   to the base), a licence of them bought for the operator unless it holds one, then the terms
   switched off so they are no standing offer; every step reads the chain first, so a crash
   anywhere buys nothing twice;
3. upscales the base's bytes from the content store (the upscaler's worker thread) and stores the
   image and its lineage: the upscaler as the model (its registered version and weights digest),
   the base as the only parent, the base's prompt and seed;
4. hands it on as `generated` with `parents` and `license_ids`: the curator judges it again (its
   parent is no duplicate of it), the publisher and the registrar register it as a derivative of
   the base under the upscaler's model version (the licence is burnt then), the prover attests it.

The upscaled asset is an asset of its own: its own licence terms, revenue and split (a share to
its parent by the terms' derivative royalty).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from agents.core import costs
from agents.models.generator import Lineage
from agents.models.upscaler import Upscaler, UpscalerError
from agents.runtime import jobs
from agents.runtime.chain import ChainClient, tx_hash_hex
from agents.runtime.journal import Job
from agents.runtime.stage import Done, Failed, Outcome, Stage
from agents.storage.cid import Cid
from agents.storage.store import BlockStore

LICENSES: Final = "LicenseManager"
ETH: Final = "0x" + "00" * 20
PERPETUAL: Final = 2**64 - 1
"""`LicenseManager.PERPETUAL`: the expiry a licence of terms without a duration carries."""
SPAWN_EVERY_S: Final = 1.0
SPAWN_LAG_S: Final = 120.0
"""How far back each read of the transitions reaches behind the cursor: a transition another
host journaled late (its clock, its transaction) is still seen."""
CURSOR: Final = "upscaler:cursor"


def child_key(base_key: str) -> str:
    """The key of a base's upscale job."""
    return f"up-{base_key}"


@dataclass(frozen=True)
class UpscaleTerms:
    """The derivative licence the operator takes on its own base to register an upscale of it: a
    perpetual licence at `price` wei (paid into the base's split: its developer, data originators
    and the protocol get their shares) and `royalty_bps` of the upscale's revenue to the base."""

    price: int = 10**15
    royalty_bps: int = 1_000

    def input(self) -> dict[str, Any]:
        """The `TermsInput` of `attachTerms`."""
        return {
            "currency": ETH,
            "price": self.price,
            "pricePerUse": 0,
            "duration": 0,
            "derivativeRoyaltyBps": self.royalty_bps,
            "commercialUse": True,
            "derivativesAllowed": True,
        }

    def matches(self, terms: Any) -> bool:
        """Whether stored `Terms` are these (as a `TermsAttached` event or `getTerms` returns them)."""
        return (
            int(terms_field(terms, "price")) == self.price
            and int(terms_field(terms, "derivativeRoyaltyBps")) == self.royalty_bps
            and int(terms_field(terms, "duration")) == 0
            and int(terms_field(terms, "pricePerUse")) == 0
            and bool(terms_field(terms, "derivativesAllowed"))
            and str(terms_field(terms, "currency")).lower() == ETH
        )


#: `ILicenseManager.Terms` in declaration order (web3 gives a struct as a tuple, an event's as a dict).
_TERMS_FIELDS: Final = (
    "asset",
    "currency",
    "pricePerUse",
    "price",
    "duration",
    "derivativeRoyaltyBps",
    "commercialUse",
    "derivativesAllowed",
    "active",
    "epoch",
)


def terms_field(terms: Any, name: str) -> Any:
    """A field of stored `Terms`, whether web3 gave them as a mapping or a tuple."""
    if isinstance(terms, Mapping):
        return terms[name]
    return terms[_TERMS_FIELDS.index(name)]


def licence_cost(receipts: Sequence[Any]) -> dict[str, Any]:
    """The gas and fee of the transactions that took an upscale's licence (its terms attached,
    bought, switched off), as a cost record's fields; the price paid is revenue of the base."""
    if not receipts:
        return {}
    shares = [costs.transaction_share(r, tx_hash_hex(r["transactionHash"]), 1) for r in receipts]
    return {
        "gas": sum(s["gas"] for s in shares),
        "fee_wei": sum(s["fee_wei"] for s in shares),
        "licence_txs": [s["tx"] for s in shares],
    }


def licence_id(terms_id: int) -> int:
    """The id of a perpetual licence of `terms_id` (`LicenseManager.decodeLicenseId`'s inverse)."""
    return terms_id << 64 | PERPETUAL


class UpscaleStage(Stage):
    name = "upscaler"
    origin = jobs.UPSCALE_WAITING
    target = jobs.GENERATED
    give_up = jobs.FAILED

    def __init__(
        self,
        journal: Any,
        upscaler: Upscaler,
        store: BlockStore,
        client: ChainClient,
        *,
        model_id: int,
        terms: UpscaleTerms | None = None,
        **options: Any,
    ) -> None:
        """`model_id`: the upscaler's registered model version, under which upscales register."""
        super().__init__(journal, **options)
        self.upscaler, self.store, self.client, self.model_id = upscaler, store, client, model_id
        self.terms = terms or UpscaleTerms()
        self._spawned = 0.0

    async def claim(self) -> list[Job]:
        if time.monotonic() - self._spawned >= SPAWN_EVERY_S:
            self._spawned = time.monotonic()
            await self.spawn()
        return await super().claim()

    async def spawn(self) -> int:
        """Journals the upscale job of every base registered since the cursor; how many were new."""
        mark = await self.journal.call(self.journal.checkpoint, CURSOR) or {}
        since = max(0.0, float(mark.get("at", 0.0)) - SPAWN_LAG_S)
        new = 0
        while True:
            arrived = await self.journal.call(self.journal.reached_since, jobs.REGISTERED, jobs.ASSET, since, limit=500)
            for key, _ in arrived:
                if not key.startswith("up-"):
                    new += await self._spawn_one(key)
            if arrived:
                await self.journal.call(self.journal.set_checkpoint, CURSOR, {"at": arrived[-1][1]})
            if len(arrived) < 500 or arrived[-1][1] == since:
                return new
            since = arrived[-1][1]

    async def _spawn_one(self, base_key: str) -> int:
        base = await self.journal.call(self.journal.get, base_key)
        if base is None or "upscale_of" in base.payload:
            return 0
        p = base.payload
        payload: dict[str, Any] = {
            "upscale_of": base_key,
            "requester": p.get("requester", ""),
            "source": "upscale",
            "requested_at": time.time(),
            **{k: p[k] for k in ("project", "lane") if k in p},
        }
        return int(await self.journal.call(self.journal.submit, child_key(base_key), jobs.ASSET, payload,
                                           stage=self.origin))  # fmt: skip

    async def process(self, batch: Sequence[Job]) -> Sequence[Outcome]:
        outcomes: list[Outcome] = []
        for job in batch:
            base = await self.journal.call(self.journal.get, str(job.payload.get("upscale_of", "")))
            if base is None or "sha256" not in base.payload or "seq" not in base.payload:
                outcomes.append(Failed(job.key, "its base is not a registered asset here", retryable=False))
                continue
            creator = str(base.payload.get("registered_creator") or base.payload.get("creator") or "")
            if creator.lower() != self.client.address.lower():
                reason = f"the base's creator is {creator}, not this operator: only its creator licenses derivatives"
                outcomes.append(Done(job.key, {"reason": reason}, stage=jobs.CANCELLED))
                continue
            try:
                licence, sent = await self.licence(
                    bytes.fromhex(base.payload["sha256"]), job.key, await self._block_of(base)
                )
                outcomes.append(Done(job.key, await self._upscaled(job, base, licence, sent)))
            except UpscalerError as error:
                outcomes.append(Failed(job.key, f"the upscaler refused the base: {error}", retryable=False))
        return outcomes

    async def licence(self, base: bytes, key: str, from_block: int = 0) -> tuple[int, list[Any]]:
        """A derivative licence of `base` the operator holds (see the module docstring, step 2),
        and the receipts of the transactions this call sent for it (none where it held one)."""
        sent: list[Any] = []
        terms_id = await self._terms(base, key, from_block, sent)
        licence = licence_id(terms_id)
        operator = self.client.address
        if int(await self.client.call(LICENSES, "balanceOf", operator, licence)) == 0:
            if not terms_field(await self.client.call(LICENSES, "getTerms", terms_id), "active"):
                sent.append(await self.client.transact(LICENSES, "setTermsActive", terms_id, True, keys=[key]))
            sent.append(
                await self.client.transact(LICENSES, "purchase", terms_id, operator, value=self.terms.price, keys=[key])
            )
        if terms_field(await self.client.call(LICENSES, "getTerms", terms_id), "active"):
            sent.append(await self.client.transact(LICENSES, "setTermsActive", terms_id, False, keys=[key]))
        return licence, sent

    async def _terms(self, base: bytes, key: str, from_block: int, sent: list[Any]) -> int:
        """The operator's newest upscale terms on `base` (attached since `from_block`, the base's
        registration), attached if it has none."""
        found = [
            int(log["args"]["termsId"])
            for log in await self.client.get_logs(
                LICENSES, "TermsAttached", from_block=from_block, argument_filters={"asset": base}
            )
            if self.terms.matches(log["args"]["terms"])
        ]
        if found:
            return max(found)
        receipt = await self.client.transact(LICENSES, "attachTerms", base, self.terms.input(), keys=[key])
        sent.append(receipt)
        (attached,) = self.client.logs(LICENSES, "TermsAttached", receipt)
        return int(attached["args"]["termsId"])

    async def _block_of(self, base: Job) -> int:
        """The block the base was registered in (where its terms can start), 0 when unknown."""
        tx = base.payload.get("register_tx") or base.payload.get("claim_tx")
        if not tx:
            return 0
        web3 = self.client.web3
        receipt = await self.client.node(web3.eth.get_transaction_receipt, "0x" + str(tx).removeprefix("0x"))
        return int(receipt["blockNumber"])

    async def _upscaled(self, job: Job, base: Job, licence: int, sent: Sequence[Any]) -> dict[str, Any]:
        b = base.payload
        request = dict(b["request"])
        png = await self.store.get(Cid.parse(b["cid"]))
        made = await self.upscaler.upscale(png, str(request["prompt"]))
        cid = await self.store.put(made.png)
        info = self.upscaler.describe()
        lineage = Lineage(
            model_id=self.model_id,
            model_digest=self.upscaler.model_digest.hex(),
            pipeline=info["pipeline"],
            scheduler=info["scheduler"],
            adapters=(),
            prompt=str(request["prompt"]),
            negative_prompt=str(request.get("negative_prompt", "")),
            seed=int(request["seed"]),
            steps=0,
            guidance=0.0,
            height=made.height,
            width=made.width,
            parents=(b["sha256"],),
            device=info["device"],
            dtype=info["dtype"],
            batch=1,
        )
        document = lineage.canonical()
        params = await self.store.put(document)
        return {
            "request": {**request, "parents": [b["sha256"]]},
            "cid": str(cid),
            "sha256": hashlib.sha256(made.png).hexdigest(),
            "params_digest": lineage.params_digest().hex(),
            "params_cid": str(params),
            "lineage": lineage.as_dict(),
            "parents": [b["sha256"]],
            "license_ids": [str(licence)],
            "model": {"name": self.upscaler.name, "version": str(self.model_id)},
            "register_model_id": self.model_id,
            "generated_at": time.time(),
            costs.GENERATE: {
                **costs.compute(made.wall_s, made.cpu_s, info["device"], stored_bytes=len(made.png) + len(document)),
                **licence_cost(sent),
            },
        }
