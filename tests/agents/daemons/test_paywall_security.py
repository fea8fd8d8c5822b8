"""The paywall and the paying client against the security review's two attacks, on the chain
under test (a fresh deployment per test, no models):

- deadlines: a voucher due sooner than `MIN_DEADLINE_S` (a day) is refused with what to sign,
  at the bound and past it, and so is a newer voucher that would expire before the channel's
  newest unsettled one; the proof of concept's scenario (a use paid with the shortest deadline
  the paywall takes, settlement running late) now settles every use;
- catching up: a `replayed_or_short` refusal carries the payer's own newest voucher, and a fresh
  client (`proofmint pay` in a new process) catches up from it, adding one use, never expiring
  before it, and refusing one that runs past its deadline cap.

A lying server's side is in tests/agents/api/test_pay_client_security.py.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from eth_account import Account

from agents.api.app import ApiDeps, build_app
from agents.api.chainview import ChainView
from agents.api.client import PayingClient, PaymentError
from agents.api.paywall import MIN_DEADLINE_S, ChannelBook, PaymentRejectedError, Paywall
from agents.core.settlement import SignedVoucher, parse_voucher
from agents.core.toolchain import project_root
from agents.core.vouchers import Voucher, sign_voucher
from agents.daemons.settle import SettleStage
from agents.deploy.deployment import CoreConfig, deploy_core
from agents.runtime import jobs
from agents.runtime.chain import CORE, ChainClient, load_abis
from agents.runtime.journal import Journal
from agents.storage.store import LocalStore
from tests.contracts.helpers import asset_record, attach_terms, register_asset, register_model

pytestmark = pytest.mark.chain

ETH = "0x" + "00" * 20
PRICE = 10**15
PNG = b"\x89PNG\r\n\x1a\n" + b"paywall-security" * 8


@dataclass
class Setup:
    journal: Journal
    client: ChainClient
    book: ChannelBook
    licenses: Any
    asset: bytes
    terms_id: int
    payer: Any
    service: str
    chain_id: int

    def signed(self, amount: int, deadline: int, key: Any = None) -> SignedVoucher:
        v = Voucher(str(self.payer.address), self.service, self.asset, self.terms_id, amount, deadline)
        return SignedVoucher(v, sign_voucher(v, key or self.payer.private_key, self.chain_id, self.licenses.address))

    def now(self) -> int:
        return int(self.client.web3.eth.get_block("latest")["timestamp"])

    def paywall(self, view: ChainView | None = None, *, clock: Any = None) -> Paywall:
        def submit(vouchers: Sequence[SignedVoucher]) -> list[str]:
            return jobs.submit_vouchers(self.journal, vouchers)

        view = view or ChainView(self.client, self.chain_id)
        return Paywall(self.book, view, submit, service=self.service, clock=clock or self.now)


@pytest.fixture
def setup(project: Any, chain: Any, accounts: Any, tmp_path: Path) -> Iterator[Setup]:
    operator, developer, creator, payer = accounts[0], accounts[1], accounts[3], accounts[5]
    deployed = {d.name: d.address for d in deploy_core(project, operator, chain, CoreConfig())}
    licenses = project.LicenseManager.at(deployed["LicenseManager"])
    model = register_model(project.ModelRegistry.at(deployed["ModelRegistry"]), developer, label="pw", data_bps=0)
    record = asset_record("paywall-security", creator, model)
    register_asset(project.ProvenanceRegistry.at(deployed["ProvenanceRegistry"]), creator, record)
    terms_id = attach_terms(licenses, creator, record.content_digest, price=0, price_per_use=PRICE)
    service = str(operator.address)
    licenses.deposit(ETH, service, 10 * PRICE, sender=payer, value=10 * PRICE)
    journal = Journal(tmp_path / "journal.db", final=jobs.REGISTERED_OR_FINAL)
    client = ChainClient(
        chain.provider.web3,
        Account.from_key(operator.private_key),
        journal,
        deployed,
        load_abis(project_root(), CORE),
        poll=0.02,
    )
    book = ChannelBook(tmp_path / "channels.db")
    yield Setup(journal, client, book, licenses, record.content_digest, terms_id, payer, service, int(chain.chain_id))
    book.close()
    journal.close()


async def _refused(paywall: Paywall, voucher: SignedVoucher, setup: Setup) -> PaymentRejectedError:
    with pytest.raises(PaymentRejectedError) as refused:
        await paywall.accept(voucher, asset=setup.asset, terms_id=setup.terms_id)
    return refused.value


def test_a_voucher_due_sooner_than_a_day_is_refused_with_what_to_sign(setup: Setup):
    async def main() -> None:
        paywall = setup.paywall()
        n = setup.now()
        for deadline in (n + 181, n + MIN_DEADLINE_S - 1):  # the old minimum, and just under the new one
            refused = await _refused(paywall, setup.signed(PRICE, deadline), setup)
            assert refused.code == "deadline_too_soon" and f"at least {MIN_DEADLINE_S} s ahead" in str(refused)
            assert refused.details["minDeadlineSeconds"] == MIN_DEADLINE_S
        await paywall.accept(setup.signed(PRICE, n + MIN_DEADLINE_S), asset=setup.asset, terms_id=setup.terms_id)

    asyncio.run(main())


def test_a_newer_voucher_expiring_before_the_channels_newest_is_refused(setup: Setup):
    async def main() -> None:
        paywall = setup.paywall()
        n = setup.now()
        first = setup.signed(PRICE, n + 3 * MIN_DEADLINE_S)
        await paywall.accept(first, asset=setup.asset, terms_id=setup.terms_id)
        refused = await _refused(paywall, setup.signed(2 * PRICE, first.voucher.deadline - 1), setup)
        assert refused.code == "deadline_too_soon" and "newest unsettled voucher" in str(refused)
        assert refused.details["channelDeadline"] == first.voucher.deadline
        await paywall.accept(
            setup.signed(2 * PRICE, first.voucher.deadline), asset=setup.asset, terms_id=setup.terms_id
        )

    asyncio.run(main())


def test_uses_paid_with_the_shortest_deadline_taken_still_settle_when_settlement_runs_late(setup: Setup, chain: Any):
    # The review's proof of concept: use 1 with a long deadline, use 2 with the shortest the
    # paywall took (now + 181 s); settlement 65 s late dropped use 2 as expired and use 1 as
    # superseded, so neither was ever paid. Now the shortest it takes settles hours late.
    async def main() -> list[str]:
        paywall = setup.paywall()
        n = setup.now()
        first = setup.signed(PRICE, n + MIN_DEADLINE_S + 3_600)
        k1 = await paywall.accept(first, asset=setup.asset, terms_id=setup.terms_id)
        for deadline in (n + 181, n + MIN_DEADLINE_S):  # the PoC's, and one at the minimum but before use 1's
            assert (await _refused(paywall, setup.signed(2 * PRICE, deadline), setup)).code == "deadline_too_soon"
        shortest = max(n + MIN_DEADLINE_S, first.voucher.deadline)
        k2 = await paywall.accept(setup.signed(2 * PRICE, shortest), asset=setup.asset, terms_id=setup.terms_id)
        chain.pending_timestamp += 6 * 3_600  # the settlement daemon was down for six hours
        chain.mine()
        await setup.client.start()
        found = [setup.journal.get(k1), setup.journal.get(k2)]
        outcomes = await SettleStage(setup.journal, setup.client, worker="t/s").process([j for j in found if j])
        by_key = {o.key: getattr(o, "stage", "failed") or SettleStage.target for o in outcomes}  # None: target
        return [by_key[k1], by_key[k2]]

    stages = asyncio.run(main())
    assert stages == [jobs.SKIPPED, jobs.SETTLED]  # use 1 superseded by use 2, which settles both
    assert int(setup.licenses.settledOf(setup.payer.address, setup.service, setup.terms_id)) == 2 * PRICE


def test_a_fresh_client_catches_up_from_the_payers_own_voucher_the_paywall_shows(setup: Setup, tmp_path: Path):
    store = LocalStore(tmp_path / "store")
    cid = store.add_bytes(PNG)
    setup.journal.submit(
        f"asset:{setup.asset.hex()}", jobs.ASSET, {"sha256": setup.asset.hex(), "cid": str(cid)}, stage=jobs.REGISTERED
    )

    async def main() -> None:
        view = ChainView(setup.client, setup.chain_id)
        paywall = setup.paywall(view, clock=time.time)  # the clock a server and its clients share
        deps = ApiDeps(setup.journal, store, view, paywall)
        server = TestServer(build_app(deps))
        await server.start_server()
        key, manager = setup.payer.private_key, str(setup.licenses.address)
        pins: dict[str, Any] = {
            "expect_chain_id": setup.chain_id,
            "expect_settlement": manager,
            "expect_service": setup.service,
        }
        try:
            async with aiohttp.ClientSession() as session:
                url = str(server.make_url(f"/v1/assets/0x{setup.asset.hex()}/content"))
                first = PayingClient(session, key, max_per_use=PRICE, **pins)
                assert [(await first.fetch(url)).paid for _ in range(2)] == [PRICE, PRICE]
                ((_, newest),) = first.channels.items()

                # a voucher behind the channel: the refusal shows the payer's own newest voucher
                async with session.get(url) as r:
                    offer = (await r.json())["error"]["details"]["x402"]["accepts"][0]
                old = setup.signed(PRICE, int(time.time()) + 2 * MIN_DEADLINE_S)
                header = {"PAYMENT-SIGNATURE": _payment(old, offer)}
                async with session.get(url, headers=header) as r:
                    assert r.status == 402
                    details = (await r.json())["error"]["details"]
                assert details["acceptedCumulative"] == str(2 * PRICE)
                assert parse_voucher(details["acceptedVoucher"]) == newest

                # a fresh client (a second `proofmint pay` run): it catches up and adds one use
                second = PayingClient(session, key, max_per_use=PRICE, budget=PRICE, **pins)
                paid = await second.fetch(url)
                assert (paid.body, paid.paid, second.spent) == (PNG, PRICE, PRICE)
                ((_, caught_up),) = second.channels.items()
                assert caught_up.voucher.cumulative_amount == 3 * PRICE
                assert caught_up.voucher.deadline >= newest.voucher.deadline

                # a wallet signed the newest voucher to run three days: a fresh client matches it ...
                long = setup.signed(4 * PRICE, int(time.time()) + 3 * MIN_DEADLINE_S)
                async with session.post(server.make_url("/v1/vouchers"), json=long.as_json()) as r:
                    assert r.status == 202, await r.text()
                third = PayingClient(session, key, max_per_use=PRICE, **pins)
                assert (await third.fetch(url)).paid == PRICE
                ((_, matched),) = third.channels.items()
                assert (matched.voucher.cumulative_amount, matched.voucher.deadline) == (
                    5 * PRICE,
                    long.voucher.deadline,
                )
                # ... unless that is past its cap: then it signs nothing more
                capped = PayingClient(session, key, max_per_use=PRICE, max_deadline_s=2 * MIN_DEADLINE_S, **pins)
                with pytest.raises(PaymentError, match="must not expire first"):
                    await capped.fetch(url)
        finally:
            await server.close()

    asyncio.run(main())
    newest = setup.book.voucher(setup.payer.address, setup.service, setup.terms_id)
    assert newest is not None and newest.voucher.cumulative_amount == 5 * PRICE


def _payment(voucher: SignedVoucher, offer: dict[str, Any]) -> str:
    body = {"x402Version": 2, "accepted": offer, "payload": voucher.as_json()}
    return base64.b64encode(json.dumps(body).encode()).decode()
