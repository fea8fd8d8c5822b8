"""What each requester may use per period, as the operator sets it: generation requests, compute
seconds (as the jobs' cost records count them, `agents.core.costs`) and spend (what its x402
`upto` permits authorise), and how many high-cost requests (more denoising work than
`costly_over` step-megapixels: steps x width x height / 10^6) it may make. Periods are fixed
windows of `period_s` seconds from the epoch, so a limit resets at the same moment on every host;
`check` says which limit a new request would pass and when it resets."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from agents.core.costs import STAGES
from agents.core.errors import PermanentError
from agents.core.inputs import read_json_file

DEFAULT_SIDE: Final = 32
"""The image side of a request that names none, where no pricing says otherwise (the shipped model's)."""
MOST_COUNTED: Final = 100_000
"""The most jobs of one requester one check reads (past it the request is refused as over)."""


class QuotaError(PermanentError, ValueError):
    """A quotas file that cannot be used (the message says why)."""


@dataclass(frozen=True)
class Quota:
    """Limits per period; None: no limit of that kind."""

    period_s: int
    requests: int | None = None
    compute_seconds: float | None = None
    spend: int | None = None
    costly_over: float | None = None
    """A request with more work than this (step-megapixels) is high-cost."""
    costly_requests: int | None = None
    """How many high-cost requests a period allows."""

    def window(self, now: float) -> tuple[float, float]:
        """The period `now` falls in: (start, end)."""
        start = now // self.period_s * self.period_s
        return start, start + self.period_s


@dataclass(frozen=True)
class Usage:
    """What a requester used in the current period."""

    requests: int
    compute_seconds: float
    spend: int
    costly: int = 0
    """Requests over the quota's `costly_over`."""


@dataclass(frozen=True)
class OverQuota:
    """Which limit a request would pass, what was used of it, and when it resets."""

    limit: str
    allowed: float
    used: float
    resets_at: float

    def message(self) -> str:
        what = {
            "requests": "requests",
            "compute_seconds": "compute seconds",
            "spend": "spend",
            "costly_requests": "high-cost requests",
        }[self.limit]
        return (
            f"over the {what} limit: {self.used:g} of {self.allowed:g} used this period (it resets at "
            f"{self.resets_at:.0f}, unix seconds)"
        )


@dataclass(frozen=True)
class Quotas:
    """The default quota and requesters' own (keys lowercased)."""

    default: Quota | None
    requesters: Mapping[str, Quota] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "requesters", {str(k).lower(): v for k, v in self.requesters.items()})

    def of(self, requester: str) -> Quota | None:
        return self.requesters.get(requester.lower(), self.default)

    @classmethod
    def from_json(cls, path: Path) -> Quotas:
        raw = read_json_file(path, QuotaError)
        if not isinstance(raw, dict) or set(raw) - {"$comment", "default", "requesters"}:
            raise QuotaError(f"{path}: a JSON object with 'default' and/or 'requesters'")
        requesters = raw.get("requesters", {})
        if not isinstance(requesters, dict):
            raise QuotaError(f"{path}: 'requesters' maps a requester to its quota")
        default = _quota(raw["default"], f"{path}: default") if raw.get("default") is not None else None
        return cls(default, {str(k): _quota(v, f"{path}: requester {k}") for k, v in requesters.items()})


def _quota(raw: Any, where: str) -> Quota:
    names = {
        "periodSeconds": "period_s",
        "requests": "requests",
        "computeSeconds": "compute_seconds",
        "spend": "spend",
        "costlyOver": "costly_over",
        "costlyRequests": "costly_requests",
    }
    fractional = {"compute_seconds", "costly_over"}
    if not isinstance(raw, dict) or set(raw) - set(names) or "periodSeconds" not in raw:
        raise QuotaError(f"{where}: an object with periodSeconds and any of {', '.join(list(names)[1:])}")
    values = {names[k]: v for k, v in raw.items()}
    for name, value in values.items():
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if value is None and name != "period_s":
            continue
        if not number or value < 0 or (name not in fractional and not isinstance(value, int)):
            raise QuotaError(f"{where}: {name} must be a non-negative {'number' if name in fractional else 'integer'}")
    if values["period_s"] < 1:
        raise QuotaError(f"{where}: periodSeconds must be at least 1")
    if (values.get("costly_over") is None) != (values.get("costly_requests") is None):
        raise QuotaError(f"{where}: costlyOver and costlyRequests go together (what is high-cost, and how many)")
    return Quota(**values)


def work_of(request: Mapping[str, Any], default_side: int) -> float:
    """The denoising work of a request (its fields: steps, height and width; a side it leaves
    out is `default_side`), in step-megapixels."""
    height = request.get("height") or default_side
    width = request.get("width") or default_side
    return int(request.get("steps", 0)) * int(height) * int(width) / 1e6


def usage_of(
    requests: Iterable[Mapping[str, Any]],
    spend: int,
    *,
    costly_over: float | None = None,
    default_side: int = DEFAULT_SIDE,
) -> Usage:
    """What a requester used in one period: its request jobs (their payloads: one request each,
    the CPU and proving seconds of their cost records, and those whose request has more work
    than `costly_over`) and what its payments may take (`spend`, counted by the caller)."""
    count, seconds, costly = 0, 0.0, 0
    for payload in requests:
        count += 1
        request = payload.get("request")
        if costly_over is not None and isinstance(request, Mapping) and work_of(request, default_side) > costly_over:
            costly += 1
        for key in STAGES:
            record = payload.get(key)
            if isinstance(record, Mapping):
                seconds += float(record.get("cpu_s", 0.0)) + float(record.get("proof_s", 0.0))
    return Usage(count, seconds, spend, costly)


def check(quota: Quota, used: Usage, now: float, *, spending: int = 0, work: float = 0.0) -> OverQuota | None:
    """Whether one more request (authorising `spending` more, of `work` step-megapixels) fits
    `quota` given `used` in the period `now` falls in; the limit it would pass, or None."""
    resets = quota.window(now)[1]
    if quota.requests is not None and used.requests + 1 > quota.requests:
        return OverQuota("requests", quota.requests, used.requests, resets)
    if quota.compute_seconds is not None and used.compute_seconds >= quota.compute_seconds:
        return OverQuota("compute_seconds", quota.compute_seconds, used.compute_seconds, resets)
    if quota.spend is not None and used.spend + spending > quota.spend:
        return OverQuota("spend", quota.spend, used.spend, resets)
    costly = quota.costly_over is not None and quota.costly_requests is not None and work > quota.costly_over
    if costly and quota.costly_requests is not None and used.costly + 1 > quota.costly_requests:
        return OverQuota("costly_requests", quota.costly_requests, used.costly, resets)
    return None
