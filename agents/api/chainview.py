"""What the API reads from the chain, through a `ChainClient` (node thread, retries): licence
terms (cached: a terms id's asset, currency and prices never change; only `active` and whether
they are superseded (the asset's record epoch moved past theirs) do, read again after
`terms_ttl_s`; the terms of each asset come from an incremental index of
`TermsAttached` events, new ones visible within `refresh_s`), channel settlements and escrow
cover, both per service (always read afresh: payments depend on them), models (cached like
terms), licences."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from agents.api.paywall import TermsInfo
from agents.runtime.chain import ChainClient

LICENSES = "LicenseManager"
MODELS = "ModelRegistry"


class EventIndex:
    """One event of one contract, read incrementally: each `refresh` (at most once per
    `refresh_s`) reads only the blocks since the last one and hands every new log to `on_log`."""

    def __init__(
        self, client: ChainClient, contract: str, event: str, on_log: Callable[[Any], None], refresh_s: float
    ) -> None:
        self.client, self.contract, self.event, self.on_log = client, contract, event, on_log
        self._refresh_s = refresh_s
        self._next_block = 0
        self._indexed_at = -1e9
        self._lock = asyncio.Lock()

    async def refresh(self, *, force: bool = False) -> None:
        """Reads new blocks, unless it did less than `refresh_s` ago (`force`: read them anyway;
        one `eth_blockNumber` when there are none)."""
        async with self._lock:
            if not force and time.monotonic() - self._indexed_at < self._refresh_s:
                return
            head = await self.client.block_number()
            if head >= self._next_block:
                logs = await self.client.get_logs(
                    self.contract, self.event, from_block=self._next_block, to_block=head, argument_filters={}
                )
                for log in logs:
                    self.on_log(log)
                self._next_block = head + 1
            self._indexed_at = time.monotonic()


def _hex(value: Any) -> str:
    return "0x" + bytes(value).hex()


class ChainView:
    def __init__(
        self, client: ChainClient, chain_id: int, *, terms_ttl_s: float = 30.0, refresh_s: float = 1.0
    ) -> None:
        self.client, self.chain_id = client, chain_id
        self.settlement: str = client.contract(LICENSES).address
        self._terms: dict[int, tuple[float, dict[str, Any] | None]] = {}
        self._ttl = terms_ttl_s
        self._terms_by_asset: dict[bytes, list[int]] = {}
        self._terms_attached = EventIndex(client, LICENSES, "TermsAttached", self._on_terms_attached, refresh_s)
        self._models: tuple[float, list[dict[str, Any]]] | None = None
        self._window: int | None = None
        self._receivers: dict[bytes, str] = {}

    async def receiver_of(self, asset: bytes) -> str:
        """`LicenseManager.paymentReceiverOf(asset)`: where push payments for the asset go, in
        any token (a CREATE2 address: it never changes, so it is read once)."""
        if asset not in self._receivers:
            self._receivers[asset] = str(await self.client.call(LICENSES, "paymentReceiverOf", asset))
        return self._receivers[asset]

    async def terms_record(self, terms_id: int, *, fresh: bool = False) -> dict[str, Any] | None:
        """A terms id's fields as JSON, or None when there is no such id (`fresh`: read now,
        whatever the cache holds)."""
        cached = self._terms.get(terms_id)
        if not fresh and cached is not None and time.monotonic() - cached[0] < self._ttl:
            return cached[1]
        count = int(await self.client.call(LICENSES, "termsCount"))
        record: dict[str, Any] | None = None
        if 1 <= terms_id <= count:
            t = await self.client.call(LICENSES, "getTerms", terms_id)
            epoch = int(t[9]) if len(t) > 9 else 0
            current = int(await self.client.call(LICENSES, "assetEpoch", t[0])) if len(t) > 9 else 0
            record = {
                "termsId": terms_id,
                "asset": _hex(t[0]),
                "currency": t[1],
                "pricePerUse": str(t[2]),
                "price": str(t[3]),
                "duration": int(t[4]),
                "derivativeRoyaltyBps": int(t[5]),
                "commercialUse": bool(t[6]),
                "derivativesAllowed": bool(t[7]),
                "active": bool(t[8]),
                # terms of an earlier record epoch (the asset's record since taken over by a
                # batch claim) sell and license nothing
                "superseded": epoch != current,
            }
            self._terms[terms_id] = (time.monotonic(), record)
        return record

    async def terms(self, terms_id: int, *, fresh: bool = False) -> TermsInfo | None:
        record = await self.terms_record(terms_id, fresh=fresh)
        if record is None:
            return None
        return TermsInfo(
            bytes.fromhex(record["asset"][2:]),
            record["currency"],
            int(record["pricePerUse"]),
            record["active"],
            record["superseded"],
        )

    async def terms_of_asset(self, asset: bytes) -> list[dict[str, Any]]:
        """Every terms record attached to `asset`, from an index of `TermsAttached` events that
        reads only the blocks since its last look (at most once per `refresh_s`)."""
        await self._terms_attached.refresh()
        found = [await self.terms_record(terms_id) for terms_id in self._terms_by_asset.get(asset, [])]
        return [record for record in found if record is not None]

    def _on_terms_attached(self, log: Any) -> None:
        ids = self._terms_by_asset.setdefault(bytes(log["args"]["asset"]), [])
        if int(log["args"]["termsId"]) not in ids:
            ids.append(int(log["args"]["termsId"]))

    async def sync(self) -> None:
        """Nothing to wait for: settlements and escrow are read afresh each time (terms within
        `terms_ttl_s`). `agents.api.license_index.LicenseIndex` serves them from events instead."""
        return None

    async def settled(self, payer: str, service: str, terms_id: int) -> int:
        """What the channel (payer, service, terms) has settled on chain."""
        return int(await self.client.read(LICENSES, "settledOf", payer, service, terms_id))

    async def cover(self, payer: str, currency: str, service: str, *, fresh: bool = True) -> int:
        """The payer's escrow with `service`, less its pending withdrawal (expired or not); always
        read now (`fresh` is for `LicenseReader`'s sake)."""
        balance, pending, _ = await self.client.read(LICENSES, "escrowOf", payer, currency, service)
        return max(0, int(balance) - int(pending))

    async def withdrawal_window(self) -> int:
        """`LicenseManager.WITHDRAWAL_WINDOW`: how long an unlocked request may be withdrawn (read once)."""
        if self._window is None:
            self._window = int(await self.client.call(LICENSES, "WITHDRAWAL_WINDOW"))
        return self._window

    async def escrow(self, payer: str, currency: str, service: str) -> dict[str, Any]:
        """The payer's escrow with `service`: balance, the pending withdrawal, when it unlocks
        and when it expires unwithdrawn (both 0 when none is pending), and where the request
        stands by the chain's clock (the latest block's time): `none`, `waiting` (before it
        unlocks), `withdrawable`, or `expired` (request again)."""
        (balance, pending, unlock_at), window = await asyncio.gather(
            self.client.call(LICENSES, "escrowOf", payer, currency, service), self.withdrawal_window()
        )
        unlock = int(unlock_at)
        expires = unlock + window if unlock else 0
        state = "none"
        if unlock:
            block = await self.client.node(self.client.web3.eth.get_block, "latest")
            now = int(block["timestamp"])
            state = "waiting" if now < unlock else "expired" if now > expires else "withdrawable"
        return {
            "balance": str(balance),
            "pendingWithdrawal": str(pending),
            "unlockAt": unlock,
            "expiresAt": expires,
            "withdrawal": state,
        }

    async def licences_of(self, holder: str, from_block: int = 0) -> list[dict[str, Any]]:
        logs = await self.client.get_logs(
            LICENSES, "LicensePurchased", from_block=from_block, argument_filters={"to": holder}
        )
        return [
            {
                "licenseId": str(log["args"]["licenseId"]),
                "termsId": int(log["args"]["termsId"]),
                "buyer": log["args"]["buyer"],
                "price": str(log["args"]["price"]),
                "expiresAt": int(log["args"]["expiresAt"]),
                "transaction": _hex(log["transactionHash"]),
            }
            for log in logs
        ]

    async def models(self) -> list[dict[str, Any]]:
        """Every registered model version (read again after `terms_ttl_s`)."""
        if self._models is not None and time.monotonic() - self._models[0] < self._ttl:
            return self._models[1]
        found = await self._read_models()
        self._models = (time.monotonic(), found)
        return found

    async def _read_models(self) -> list[dict[str, Any]]:
        count = int(await self.client.call(MODELS, "modelCount"))
        # the struct's fields by name, from the ABI (robust to fields added to `Model`)
        outputs = self.client.contract(MODELS).get_function_by_name("getModel").abi["outputs"]
        names = [str(component["name"]) for component in outputs[0]["components"]]
        found = []
        for model_id in range(1, min(count, 1_000) + 1):
            m = dict(zip(names, await self.client.call(MODELS, "getModel", model_id), strict=True))
            view: dict[str, Any] = {
                "modelId": model_id,
                "developer": m["developer"],
                "weightsDigest": _hex(m["weightsDigest"]),
                "paramsCommitment": _hex(m["paramsCommitment"]),
                "dataRoot": _hex(m["dataRoot"]),
                "verifier": m["verifier"],
                "vkDigest": _hex(m["vkDigest"]),
            }
            if "verifierCodeHash" in m:
                view["verifierCodeHash"] = _hex(m["verifierCodeHash"])
            view.update(
                {
                    "predecessor": int(m["predecessor"]),
                    "developerBps": int(m["developerBps"]),
                    "dataBps": int(m["dataBps"]),
                    "registeredAt": int(m["registeredAt"]),
                    "retiredAt": int(m["retiredAt"]),
                    "metadataURI": m["metadataURI"],
                }
            )
            found.append(view)
        return found
