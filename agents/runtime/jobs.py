"""The stages an asset passes, and how a request becomes a job.

    requested --generator--> generated --curator--> curated --publisher--> published
        --registrar--> registered --registrar (deliver)--> delivered --prover--> attested

(or, registering by commit then claim: published --commit--> committed --claim--> registered).
With the upscaler running, each registered base gets an upscale job of its own:
`upscale-waiting --upscaler--> generated`, and on as above, registered as a derivative of its base.
Requests come from the CLI, the API, or `GenerationMarket` events (`agents.daemons.market`);
delivery fulfils a paid market request with its asset and passes every other job straight on.

Side exits: the curator sends `review` (the human-review band) and `rejected` (moderation,
duplicates, poor alignment); the prover gives up to `unproven` after its retries; any stage gives
up to `failed`; a market request reorged out before work began is `cancelled`. A request's key
derives from its content (requester, prompt, seed and every parameter), so the same request
submitted twice (from the CLI or the API) is one job; a market request's key is its market and
request id. Vouchers are jobs of their own kind: `received --settlement--> settled | skipped`.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from typing import Any, Final

from agents.core.costs import SETTLE as SETTLE_COST
from agents.core.errors import PermanentError
from agents.core.requests import GenerationRequest, GeneratorError
from agents.core.reviews import ReviewDecision
from agents.core.settlement import SignedVoucher
from agents.runtime.journal import Job, Journal

ASSET: Final = "asset"
VOUCHER: Final = "voucher"
X402: Final = "x402"
"""An x402 `exact` payment (`agents.api.exact`), keyed by payer and nonce."""
X402_UPTO: Final = "x402-upto"
"""An x402 `upto` payment for a generation request (`agents.api.upto`), keyed by payer and nonce."""

UPSCALE_WAITING: Final = "upscale-waiting"
"""A registered base's upscale, before the upscaler made it (`agents.daemons.upscale`); then `generated`."""
REQUESTED: Final = "requested"
GENERATED: Final = "generated"
CURATED: Final = "curated"
REVIEW: Final = "review"
REJECTED: Final = "rejected"
PUBLISHED: Final = "published"
COMMITTED: Final = "committed"
REGISTERED: Final = "registered"
DELIVERED: Final = "delivered"
ATTESTED: Final = "attested"
CANCELLED: Final = "cancelled"
UNPROVEN: Final = "unproven"
FAILED: Final = "failed"
RECEIVED: Final = "received"
SETTLED: Final = "settled"
SKIPPED: Final = "skipped"
X402_PAYING: Final = "x402-paying"
X402_PAID: Final = "x402-paid"
X402_SWEPT: Final = "x402-swept"
X402_REFUSED: Final = "x402-refused"
UPTO_AUTHORISED: Final = "upto-authorised"  # waits for its request's job to consume what it will
UPTO_CHARGING: Final = "upto-charging"  # the charge fixed, the settlement on its way
UPTO_SETTLED: Final = "upto-settled"
UPTO_REFUSED: Final = "upto-refused"  # the chain refused the charge (nonce cancelled, funds gone)
UPTO_VOID: Final = "upto-void"  # never used: its request had been submitted already

#: Stages a job never leaves by itself (`review` waits for a person).
FINAL: Final = frozenset(
    {ATTESTED, UNPROVEN, REJECTED, REVIEW, FAILED, SETTLED, SKIPPED, CANCELLED, X402_SWEPT, X402_REFUSED}
    | {UPTO_SETTLED, UPTO_REFUSED, UPTO_VOID}
)
#: Stages past the registration deadline's reach: a job there is no orphan (the journal's `final`).
REGISTERED_OR_FINAL: Final = FINAL | {REGISTERED, DELIVERED}
#: How long (s) a request may take to be registered before it counts as an orphan.
REGISTRATION_DEADLINE_S: Final = 3_600.0


def request_key(request: GenerationRequest, requester: str) -> str:
    """The idempotency key of a request: sha256 of its canonical JSON and the requester."""
    body = json.dumps({"requester": requester.lower(), **asdict(request)}, sort_keys=True, separators=(",", ":"))
    return "req-" + hashlib.sha256(body.encode()).hexdigest()[:40]


def request_payload(request: GenerationRequest, *, requester: str, source: str) -> dict[str, Any]:
    return {
        "request": asdict(request),
        "requester": requester,
        "source": source,
        "requested_at": time.time(),
    }


def request_of(payload: Mapping[str, Any]) -> GenerationRequest:
    """The request a job carries; `GeneratorError` if the payload is malformed."""
    raw = payload.get("request")
    if not isinstance(raw, Mapping):
        raise GeneratorError("the job carries no request")
    try:
        fields = dict(raw)
        fields["parents"] = tuple(fields.get("parents", ()))
        return GenerationRequest(**fields)
    except TypeError as exc:
        raise GeneratorError(f"malformed request: {exc}") from exc


def submit_request(
    journal: Journal,
    request: GenerationRequest,
    *,
    requester: str,
    source: str,
    extra: Mapping[str, Any] | None = None,
    deadline_s: float = REGISTRATION_DEADLINE_S,
) -> tuple[str, bool]:
    """Journals a request at `requested`; returns its key and whether it was new (blocking)."""
    key = request_key(request, requester)
    payload = {**request_payload(request, requester=requester, source=source), **dict(extra or {})}
    return key, journal.submit(key, ASSET, payload, stage=REQUESTED, deadline_s=deadline_s)


def voucher_key(voucher: SignedVoucher) -> str:
    return "voucher-" + voucher.signature.hex()[:64]


def submit_voucher(journal: Journal, voucher: SignedVoucher) -> tuple[str, bool]:
    """Journals a signed voucher for settlement (blocking); its key and whether it was new."""
    key = voucher_key(voucher)
    return key, journal.submit(key, VOUCHER, voucher.as_json(), stage=RECEIVED)


def submit_vouchers(journal: Journal, vouchers: Sequence[SignedVoucher]) -> list[str]:
    """`submit_voucher` for each, in one transaction (blocking); their keys, in order."""
    keys = [voucher_key(v) for v in vouchers]
    journal.submit_many([(k, VOUCHER, v.as_json()) for k, v in zip(keys, vouchers, strict=True)], stage=RECEIVED)
    return keys


class ReviewStateError(PermanentError):
    """A review decision for an asset that is not waiting for one (`status`: 404 or 409)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def decide_review(
    journal: Journal, decision: ReviewDecision, signature: bytes, *, decided_at: float
) -> tuple[str, str, str]:
    """Applies a signed, authorised review decision (blocking): the asset's job leaves `review`
    for `curated` (approved: it continues through the pipeline) or `rejected` (with the
    reviewer's reason), and the decision is kept in its curation record as labelled data.
    Returns (job key, new stage, reason); ReviewStateError when no job of the asset is in review."""
    found = journal.with_digest(ASSET, decision.asset.hex())
    waiting = [job for job in found if job.stage == REVIEW]
    if not waiting:
        if not found:
            raise ReviewStateError(f"no asset 0x{decision.asset.hex()} here", 404)
        raise ReviewStateError(f"asset 0x{decision.asset.hex()} is not in review (it is at {found[0].stage})", 409)
    job = waiting[0]
    review = {**decision.as_json(), "signature": "0x" + signature.hex(), "decided_at": decided_at}
    verdict = "approved" if decision.approve else "rejected"
    reason = f"{verdict} by reviewer {review['reviewer']}" + (f": {decision.reason}" if decision.reason else "")
    curation = {
        **job.payload.get("curation", {}),
        "review": review,
        "reason": reason,
        "decision": "accept" if decision.approve else "reject",
    }
    target = CURATED if decision.approve else REJECTED
    journal.advance([job.key], REVIEW, target, updates={job.key: {"curation": curation}})
    return job.key, target, reason


def reviewed(journal: Journal, *, limit: int = 100_000) -> list[dict[str, Any]]:
    """Every review decision kept, as labelled data for the curation head's trainer: the asset,
    its prompt and image embedding, the curator's alignment and the reviewer's verdict."""
    rows = []
    for stage in (CURATED, PUBLISHED, COMMITTED, REGISTERED, DELIVERED, ATTESTED, UNPROVEN, REJECTED, FAILED):
        for job in journal.at_stage(stage, limit=limit):
            review = job.payload.get("curation", {}).get("review")
            if review is None:
                continue
            rows.append(
                {
                    "digest": "0x" + str(job.payload.get("sha256", "")),
                    "prompt": job.payload.get("request", {}).get("prompt"),
                    "embedding": job.payload.get("embedding"),
                    "alignment": job.payload.get("curation", {}).get("alignment"),
                    "label": "accept" if review["approve"] else "reject",
                    "reviewer": review["reviewer"],
                    "reason": review["reason"],
                    "signature": review["signature"],
                    "decided_at": review["decided_at"],
                }
            )
    return sorted(rows, key=lambda row: (row["decided_at"], row["digest"]))


def _created_since(journal: Journal, kind: str, since: float, *, most: int, page: int) -> tuple[list[Job], bool]:
    """The jobs of `kind` created since `since`, page by page, at most `most` of them (blocking),
    and whether it stopped there with more to read."""
    found: list[Job] = []
    while len(found) < most:
        asked = min(page, most - len(found))
        batch = journal.created_since(kind, since, limit=asked, offset=len(found))
        found += batch
        if len(batch) < asked:
            return found, False
    return found, bool(journal.created_since(kind, since, limit=1, offset=len(found)))


def payloads_since(
    journal: Journal,
    kind: str,
    since: float,
    takes: Callable[[Mapping[str, Any]], bool],
    *,
    most: int,
    page: int = 1_000,
) -> tuple[list[dict[str, Any]], bool]:
    """The payloads of the jobs of `kind` created since `since` that `takes` keeps, reading at
    most `most` jobs (blocking), and whether it stopped there with more to read."""
    read, more = _created_since(journal, kind, since, most=most, page=page)
    return [job.payload for job in read if takes(job.payload)], more


def settlements_since(journal: Journal, since: float, *, most: int, page: int = 1_000) -> dict[str, dict[str, Any]]:
    """The payloads of the settlement jobs (vouchers, x402 upto payments) created since `since`
    that carry a settlement cost record, by key; at most `most` of each kind read (blocking)."""
    found: dict[str, dict[str, Any]] = {}
    for kind in (VOUCHER, X402_UPTO):
        read, _ = _created_since(journal, kind, since, most=most, page=page)
        found |= {job.key: job.payload for job in read if SETTLE_COST in job.payload}
    return found
