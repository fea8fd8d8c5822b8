"""What a generation request paid with x402 `upto` costs: the operator's prices
(`RequestPricing`, from a JSON file; the shipped one is `DEFAULT_PRICING`) applied to what a job
consumed (`Usage`): the most a request may cost, authorised up front, and the charge taken after."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

from agents.core.errors import PermanentError
from agents.core.inputs import read_json_file
from agents.core.requests import GenerationRequest

MEGA: Final = 1_000_000
STANDARD_LANE: Final = "standard"
FAST_LANE: Final = "fast"
LANES: Final = (STANDARD_LANE, FAST_LANE)
"""A request's priority lane: the generator serves the fast lane first (never starving the
standard one), and the fast lane costs `fastLanePercent` of the standard price (base and compute)."""
DEFAULT_PRICING: Final = Path("models") / "request-pricing.json"
"""The shipped pricing (under the project root), what `--request-pricing` defaults to."""


class PricingError(PermanentError, ValueError):
    """A request pricing file that cannot be used (the message says why)."""


@dataclass(frozen=True)
class Usage:
    """What one generation request consumed: whether an image was made, its denoising steps and
    pixels, and the registration batch it went in (its transaction's gas and how many assets
    shared it; None when not registered)."""

    generated: bool
    steps: int = 0
    pixels: int = 0
    batch_gas: int | None = None
    batch_size: int | None = None
    lane: str = STANDARD_LANE


@dataclass(frozen=True)
class RequestPricing:
    """What a generation request costs, in the token's base units (see `docs/x402.md`).

    `base`: each request that made an image; `per_step_megapixel`: each denoising step over a
    million pixels (pro rata); `per_megagas`: each million gas of the request's share of its
    registration transaction; `max_batch_gas`: the most gas a request's share may be (a batch
    of one), what the maximum authorises; `default_side`: the image side when a request names
    none (the shipped model makes 32 x 32)."""

    base: int
    per_step_megapixel: int
    per_megagas: int
    max_batch_gas: int
    default_side: int
    fast_lane_percent: int = 100

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**96:
                raise PricingError(f"{name} must be an integer in [0, 2^96), got {value!r}")
        if self.default_side < 8:
            raise PricingError(f"default_side must be at least 8, got {self.default_side}")
        if self.fast_lane_percent < 100:
            raise PricingError(
                f"fast_lane_percent must be at least 100 (the fast lane costs more), got {self.fast_lane_percent}"
            )

    @classmethod
    def from_json(cls, path: Path) -> RequestPricing:
        raw = read_json_file(path, PricingError)
        fields = {
            "base": "base",
            "perStepMegapixel": "per_step_megapixel",
            "perMegagas": "per_megagas",
            "maxBatchGas": "max_batch_gas",
            "defaultSide": "default_side",
            "fastLanePercent": "fast_lane_percent",
        }
        if not isinstance(raw, dict):
            raise PricingError(f"{path}: a JSON object with {sorted(fields)}")
        unknown = set(raw) - set(fields) - {"$comment"}
        missing = set(fields) - set(raw) - {"fastLanePercent"}
        if unknown or missing:
            raise PricingError(f"{path}: unknown fields {sorted(unknown)}, missing {sorted(missing)}")
        return cls(**{name: raw[key] for key, name in fields.items() if key in raw})

    def pixels_of(self, request: GenerationRequest) -> int:
        return (request.height or self.default_side) * (request.width or self.default_side)

    def compute(self, steps: int, pixels: int) -> int:
        return math.ceil(steps * pixels * self.per_step_megapixel / MEGA)

    def gas(self, gas: int) -> int:
        return math.ceil(gas * self.per_megagas / MEGA)

    def lane_surcharge(self, amount: int, lane: str) -> int:
        """What the fast lane adds to `amount` (the base and compute of a request)."""
        return math.ceil(amount * (self.fast_lane_percent - 100) / 100) if lane == FAST_LANE else 0

    def maximum(self, request: GenerationRequest, lane: str = STANDARD_LANE) -> int:
        """The most `request` may cost in `lane`: its steps at its resolution, registered alone."""
        work = self.base + self.compute(request.steps, self.pixels_of(request))
        return work + self.lane_surcharge(work, lane) + self.gas(self.max_batch_gas)

    def charge(self, usage: Usage, authorised: int) -> dict[str, Any]:
        """What `usage` costs, item by item, and the total taken (at most `authorised`)."""
        if not usage.generated:
            items = {"base": 0, "compute": 0, "lane": 0, "batch": 0}
        else:
            gas, size = usage.batch_gas, usage.batch_size
            share = math.ceil(gas / size) if gas and size else None
            work = self.base + self.compute(usage.steps, usage.pixels)
            items = {
                "base": self.base,
                "compute": self.compute(usage.steps, usage.pixels),
                "lane": self.lane_surcharge(work, usage.lane),
                "batch": 0 if share is None else self.gas(min(share, self.max_batch_gas)),
            }
        total = min(sum(items.values()), authorised)
        return {
            **{k: str(v) for k, v in items.items()},
            "steps": usage.steps,
            "pixels": usage.pixels,
            "batchGas": usage.batch_gas,
            "batchSize": usage.batch_size,
            "laneName": usage.lane,
            "total": str(total),
        }
