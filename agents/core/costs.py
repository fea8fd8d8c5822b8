"""What each generated asset cost, as its job records it, stage by stage.

Every stage that spends something on a job writes one record into the job's payload under its
own key (`GENERATE`, `CURATE`, `PUBLISH`, `REGISTER`, `PROVE`): compute (`wall_s`, `cpu_s`, the
`device` it ran on), bytes stored (`stored_bytes`), and a transaction's share (`gas`, `fee_wei`:
the gas used and the fee paid as the receipt says, the L2's L1 data fee included where the
receipt has one, divided by the jobs the transaction served, with the transaction and that
count). Settlement happens on jobs of their own (a voucher, an x402 upto payment): their
`SETTLE` record is counted against the asset the voucher pays for, or the request the payment
paid. Records are what was consumed, never money: prices are applied when costs are read
(`CostPrices`, from the operator's configuration)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

from agents.core.errors import PermanentError
from agents.core.inputs import read_json_file

GENERATE: Final = "cost_generate"
CURATE: Final = "cost_curate"
PUBLISH: Final = "cost_publish"
REGISTER: Final = "cost_register"
PROVE: Final = "cost_prove"
SETTLE: Final = "cost_settle"
STAGES: Final = (GENERATE, CURATE, PUBLISH, REGISTER, PROVE, SETTLE)
"""The payload keys of the cost records, in pipeline order (`SETTLE` on settlement jobs)."""


def compute(wall_s: float, cpu_s: float, device: str, *, stored_bytes: int = 0) -> dict[str, Any]:
    """A compute record: seconds of wall and CPU time spent on one job, and where."""
    record: dict[str, Any] = {"wall_s": round(wall_s, 6), "cpu_s": round(cpu_s, 6), "device": device}
    if stored_bytes:
        record["stored_bytes"] = stored_bytes
    return record


def without_costs(updates: Mapping[str, Any]) -> dict[str, Any]:
    """`updates` without their cost records (a stage that keeps no accounts)."""
    return {key: value for key, value in updates.items() if key not in STAGES}


def stored(stored_bytes: int) -> dict[str, Any]:
    """A storage record: bytes this stage put in the content store for one job."""
    return {"stored_bytes": stored_bytes}


def transaction_share(receipt: Any, tx: str, jobs: int, **more: Any) -> dict[str, Any]:
    """One job's share of a transaction that served `jobs` of them: its gas used and the fee
    paid (gas used x effective gas price, plus the L1 data fee an OP-stack receipt names as
    `l1Fee`), divided evenly (rounded up)."""
    gas = int(receipt["gasUsed"])
    price = int(receipt.get("effectiveGasPrice", 0) or 0)
    l1_fee = _quantity(receipt.get("l1Fee"))
    return {"tx": tx, "jobs": jobs, "gas": -(-gas // jobs), "fee_wei": -(-(gas * price + l1_fee) // jobs), **more}


def _quantity(value: Any) -> int:
    """A receipt's quantity, as an int or a hex string (absent: 0)."""
    if value is None:
        return 0
    return int(value, 16) if isinstance(value, str) else int(value)


FEE_HISTORY_BLOCKS: Final = 20
"""How many recent blocks the gas price now is read from (`eth_feeHistory`)."""


def gas_price_of(history: Mapping[str, Any]) -> int:
    """What a transaction pays per gas now, from an `eth_feeHistory(blocks, "latest", [50])`
    answer: the next block's base fee plus the median of the blocks' median priority fees."""
    base = list(history.get("baseFeePerGas") or [])
    if not base:
        raise ValueError("the fee history has no base fees")
    tips = sorted(_quantity(block[0]) for block in (history.get("reward") or []) if block)
    tip = tips[len(tips) // 2] if tips else 0
    return _quantity(base[-1]) + tip


def at_gas_price(summary: Mapping[str, Any], price_wei: int, prices: CostPrices) -> dict[str, Any]:
    """`summary`'s gas priced at `price_wei` (the chain's price now) instead of what receipts
    paid: what the same work would cost in fees today, in all and per registered asset."""
    gas = sum(float(stage["gas"]) for stage in summary["byStage"].values())
    usd = gas * price_wei / 1e18 * prices.usd_per_eth
    registered = summary.get("registered") or 0
    return {
        "priceWei": price_wei,
        "blocks": FEE_HISTORY_BLOCKS,
        "gas": int(gas),
        "feeUsd": round(usd, 9),
        "feeUsdPerRegisteredAsset": round(usd / registered, 9) if registered else None,
    }


class CostPricesError(PermanentError, ValueError):
    """A cost prices file that cannot be used (the message says why)."""


@dataclass(frozen=True)
class CostPrices:
    """What the operator pays for what jobs consume, in US dollars: a CPU second, a GPU second, an
    ether (the fees receipts show are in wei), and a gigabyte stored. From a JSON file
    (`DEFAULT_PRICES` ships one); never constants in code."""

    usd_per_cpu_second: float
    usd_per_gpu_second: float
    usd_per_eth: float
    usd_per_gb_stored: float

    @classmethod
    def from_json(cls, path: Path) -> CostPrices:
        fields = {
            "usdPerCpuSecond": "usd_per_cpu_second",
            "usdPerGpuSecond": "usd_per_gpu_second",
            "usdPerEth": "usd_per_eth",
            "usdPerGbStored": "usd_per_gb_stored",
        }
        raw = read_json_file(path, CostPricesError)
        if not isinstance(raw, dict) or set(raw) - {"$comment"} != set(fields):
            raise CostPricesError(f"{path}: a JSON object with exactly {sorted(fields)}")
        values = {name: raw[key] for key, name in fields.items()}
        for name, value in values.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1e12:
                raise CostPricesError(f"{path}: {name} must be a non-negative number, got {value!r}")
        return cls(**{k: float(v) for k, v in values.items()})


DEFAULT_PRICES: Final = Path("models") / "cost-prices.json"
"""The shipped prices (under the project root), what `--cost-prices` defaults to."""


@dataclass(frozen=True)
class CostFilter:
    """Which jobs to count: by requester (any case), project label, generating model version, and
    creation time (unix seconds)."""

    requester: str | None = None
    project: str | None = None
    model: int | None = None
    since: float = 0.0

    def takes(self, payload: Mapping[str, Any]) -> bool:
        if self.requester is not None and str(payload.get("requester", "")).lower() != self.requester.lower():
            return False
        if self.project is not None and payload.get("project") != self.project:
            return False
        lineage = payload.get("lineage") or {}
        return self.model is None or lineage.get("model_id") == self.model


_SUMS: Final = ("wall_s", "cpu_s", "proof_s", "gas", "fee_wei", "stored_bytes")


def _usd(record: Mapping[str, Any], prices: CostPrices) -> float:
    seconds = float(record.get("cpu_s", 0.0)) + float(record.get("proof_s", 0.0))
    gpu = str(record.get("device", "cpu")).startswith(("cuda", "mps", "gpu"))
    compute = seconds * (prices.usd_per_gpu_second if gpu else prices.usd_per_cpu_second)
    gas = int(record.get("fee_wei", 0)) / 1e18 * prices.usd_per_eth
    storage = int(record.get("stored_bytes", 0)) / 1e9 * prices.usd_per_gb_stored
    return compute + gas + storage


class Settlements:
    """The settlement records (`SETTLE`) of voucher and payment jobs, by what they settled for:
    a voucher's asset (its content digest), an x402 upto payment's key (its request names it)."""

    def __init__(self, jobs: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self._by_asset: dict[str, list[Mapping[str, Any]]] = {}
        self._by_key: dict[str, Mapping[str, Any]] = {}
        for key, payload in (jobs or {}).items():
            record = payload.get(SETTLE)
            if not isinstance(record, Mapping):
                continue
            asset = payload.get("asset")
            if isinstance(asset, str):  # a voucher: what it paid for
                self._by_asset.setdefault(asset.lower().removeprefix("0x"), []).append(record)
            else:  # a payment: the request that names it
                self._by_key[key] = record

    def of(self, payload: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        """The settlement records that belong to the asset job `payload`."""
        found = list(self._by_asset.get(str(payload.get("sha256", "")).lower(), ()))
        payment = payload.get("payment")
        if isinstance(payment, str) and payment in self._by_key:
            found.append(self._by_key[payment])
        return found


def _records(payload: Mapping[str, Any], settlements: Settlements) -> list[tuple[str, Mapping[str, Any]]]:
    """(stage, record) for every cost record of the asset job `payload`, its settlements' too."""
    own = [(key.removeprefix("cost_"), payload[key]) for key in STAGES if isinstance(payload.get(key), Mapping)]
    return own + [(SETTLE.removeprefix("cost_"), record) for record in settlements.of(payload)]


def asset_usd(payload: Mapping[str, Any], prices: CostPrices, settlements: Settlements | None = None) -> dict[str, Any]:
    """What one asset job cost at `prices`: in all (`usd`) and stage by stage (`byStage`)."""
    by_stage: dict[str, float] = {}
    for stage, record in _records(payload, settlements or Settlements()):
        by_stage[stage] = by_stage.get(stage, 0.0) + _usd(record, prices)
    return {"usd": round(sum(by_stage.values()), 9), "byStage": {k: round(v, 9) for k, v in by_stage.items()}}


def summarise(
    payloads: Iterable[Mapping[str, Any]], prices: CostPrices, settlements: Settlements | None = None
) -> dict[str, Any]:
    """The costs of jobs (their payloads), stage by stage: what was consumed and what it cost
    at `prices`, in total, per job, and per registered asset (every job's cost, the rejected ones'
    too, over the assets that reached the chain). `settlements` adds what settling each asset's
    vouchers and each request's payment cost (stage `settle`)."""
    settlements = settlements or Settlements()
    by_stage: dict[str, dict[str, float]] = {key.removeprefix("cost_"): dict.fromkeys((*_SUMS, "usd"), 0.0)
                                             for key in STAGES}  # fmt: skip
    counted = registered = 0
    for payload in payloads:
        records = _records(payload, settlements)
        if not records:
            continue
        counted += 1
        registered += "seq" in payload
        for stage, record in records:
            sums = by_stage[stage]
            for name in _SUMS:
                sums[name] += float(record.get(name, 0) or 0)
            sums["usd"] += _usd(record, prices)
    total = sum(stage["usd"] for stage in by_stage.values())
    return {
        "jobs": counted,
        "registered": registered,
        "byStage": {name: {k: round(v, 9) for k, v in sums.items()} for name, sums in by_stage.items()},
        "usd": round(total, 9),
        "usdPerJob": round(total / counted, 9) if counted else None,
        "usdPerRegisteredAsset": round(total / registered, 9) if registered else None,
        "prices": asdict(prices),
    }
