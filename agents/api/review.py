"""Human review over the API: the queue of assets the curator sent to review, and the signed
decisions of the deployment's reviewers (`agents.core.reviews`).

`GET /v1/review` lists the queue; `GET /v1/review/eip712` gives the domain, types and reviewers a
wallet signs for; `POST /v1/review/{digest}` takes a decision signed by a reviewer: the signature
must recover the reviewer it names, the reviewer must be one of the deployment's, the deadline
must not have passed, and the asset must still be waiting. An approved asset continues through
the pipeline; a rejected one ends with the reviewer's reason. Each decision is kept with the
asset (`proofmint review export` writes them out as labelled data).
"""

from __future__ import annotations

import time
from typing import Any, TypedDict

from agents.api.errors import ApiError
from agents.api.views import HEAD_UNIT
from agents.core.reviews import REVIEW_TYPES, ReviewDecision, ReviewError, review_domain, signer_of_review
from agents.runtime.journal import Job

_FIELDS = {"reviewer", "approve", "reason", "deadline", "signature"}
#: A decision may be signed at most this far ahead of its deadline (a short-lived authorisation).
MAX_DECISION_LIFETIME_S = 7 * 86_400


class ReviewItem(TypedDict):
    key: str
    digest: str
    prompt: str
    seed: int
    alignment: float | None
    score: float | None
    """The curation head's score (None where cosine bands decided)."""
    reason: str | None
    cid: str | None
    createdAt: float


def review_item(job: Job) -> ReviewItem:
    payload = job.payload
    request = payload.get("request", {})
    curation = payload.get("curation", {})
    alignment = curation.get("alignment")
    return {
        "key": job.key,
        "digest": "0x" + str(payload.get("sha256", "")),
        "prompt": str(request.get("prompt", "")),
        "seed": int(request.get("seed", 0)),
        "alignment": float(alignment) if isinstance(alignment, int | float) else None,
        "score": int(curation["score"]) / HEAD_UNIT if isinstance(curation.get("score"), int) else None,
        "reason": curation.get("reason"),
        "cid": payload.get("cid"),
        "createdAt": job.created_at,
    }


def eip712(chain_id: int, registry: str, reviewers: frozenset[str]) -> dict[str, Any]:
    return {
        "domain": review_domain(chain_id, registry),
        "types": REVIEW_TYPES,
        "primaryType": "ReviewDecision",
        "reviewers": sorted(reviewers),
    }


def decision_of(
    body: Any, digest: bytes, chain_id: int, registry: str, reviewers: frozenset[str], now: float | None = None
) -> tuple[ReviewDecision, bytes]:
    """The decision a request body carries, checked: well formed (422), signed by the reviewer it
    names (422), one of the deployment's reviewers (403), not expired (422)."""
    if (
        not isinstance(body, dict)
        or set(body) - _FIELDS
        or not {"reviewer", "approve", "deadline", "signature"} <= set(body)
    ):
        raise ApiError(422, f"a decision is a JSON object with {sorted(_FIELDS)}", code="bad_review")
    approve, deadline, signature = body["approve"], body["deadline"], body["signature"]
    if not isinstance(approve, bool) or isinstance(deadline, bool) or not isinstance(deadline, int):
        raise ApiError(422, "approve is a boolean and deadline an integer (unix seconds)", code="bad_review")
    if not isinstance(signature, str) or not signature.startswith("0x") or len(signature) != 132:
        raise ApiError(422, "signature is 0x and 130 hex digits (65 bytes)", code="bad_review")
    try:
        raw = bytes.fromhex(signature[2:])
        decision = ReviewDecision(str(body["reviewer"]), digest, approve, str(body.get("reason", "")), deadline)
        signer = signer_of_review(decision, raw, chain_id, registry)
    except ValueError as exc:  # ReviewError is a ValueError, as is bad hex
        raise ApiError(422, str(exc), code="bad_review") from None
    if signer.lower() != decision.reviewer.lower():
        message = f"the signature is {signer}'s, not the reviewer {decision.reviewer}'s"
        raise ApiError(422, message, code="bad_signature")
    if signer.lower() not in {r.lower() for r in reviewers}:
        raise ApiError(403, f"{signer} is not a reviewer of this deployment", code="not_a_reviewer")
    now = time.time() if now is None else now
    if deadline <= now:
        raise ApiError(422, "the decision's deadline has passed: sign it again", code="expired")
    if deadline > now + MAX_DECISION_LIFETIME_S:
        raise ApiError(422, "the deadline is more than 7 days away", code="bad_review")
    return decision, raw


__all__ = ["MAX_DECISION_LIFETIME_S", "ReviewError", "ReviewItem", "decision_of", "eip712", "review_item"]
