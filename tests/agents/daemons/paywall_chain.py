"""A deployment the paywall's chain tests share: core contracts, one registered asset with two
metered terms, two payers with 10 uses of escrow each with the service (the operator), a journal
and the operator's chain client."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account

from agents.api.chainview import ChainView
from agents.api.license_index import LicenseIndex
from agents.api.paywall import MIN_DEADLINE_S, ChannelBook, Paywall
from agents.core.settlement import SignedVoucher
from agents.core.toolchain import project_root
from agents.core.vouchers import Voucher, sign_voucher
from agents.deploy.deployment import CoreConfig, deploy_core
from agents.runtime import jobs
from agents.runtime.chain import CORE, ChainClient, load_abis
from agents.runtime.journal import Journal
from tests.contracts.helpers import asset_record, attach_terms, register_asset, register_model

ETH = "0x" + "00" * 20
PRICE = 10**15

Submit = Callable[[Sequence[SignedVoucher]], list[str]]


@dataclass
class Deployed:
    client: ChainClient
    journal: Journal
    licenses: Any
    asset: bytes
    terms: tuple[int, int]
    creator: Any
    payer: Any
    other: Any
    operator: Any
    service: str
    chain_id: int

    def signed(self, terms_id: int, amount: int, payer: Any = None, deadline: int | None = None) -> SignedVoucher:
        payer = payer or self.payer
        deadline = deadline or self.now() + 2 * MIN_DEADLINE_S
        v = Voucher(str(payer.address), self.service, self.asset, terms_id, amount, deadline)
        return SignedVoucher(v, sign_voucher(v, payer.private_key, self.chain_id, self.licenses.address))

    def now(self) -> int:
        return int(self.client.web3.eth.get_block("latest")["timestamp"])

    def reader(self) -> Any:
        return LicenseIndex(ChainView(self.client, self.chain_id))

    def paywall(
        self, book: ChannelBook, reader: Any = None, submit: Submit | None = None, read_timeout_s: float = 10.0
    ) -> Paywall:
        def journal(vouchers: Sequence[SignedVoucher]) -> list[str]:
            return jobs.submit_vouchers(self.journal, vouchers)

        return Paywall(
            book,
            reader or self.reader(),
            submit or journal,
            service=self.service,
            clock=self.now,
            read_timeout_s=read_timeout_s,
        )


def deploy(project: Any, chain: Any, accounts: Any, tmp_path: Path, label: str) -> Deployed:
    """A fresh deployment (its journal is the caller's to close)."""
    operator, developer, creator, payer, other = accounts[0], accounts[1], accounts[3], accounts[5], accounts[6]
    addresses = {d.name: d.address for d in deploy_core(project, operator, chain, CoreConfig())}
    licenses = project.LicenseManager.at(addresses["LicenseManager"])
    model = register_model(project.ModelRegistry.at(addresses["ModelRegistry"]), developer, label=label, data_bps=0)
    record = asset_record(f"paywall-{label}", creator, model)
    register_asset(project.ProvenanceRegistry.at(addresses["ProvenanceRegistry"]), creator, record)
    first, second = (
        attach_terms(licenses, creator, record.content_digest, price=0, price_per_use=PRICE) for _ in range(2)
    )
    service = str(operator.address)
    for who in (payer, other):
        licenses.deposit(ETH, service, 10 * PRICE, sender=who, value=10 * PRICE)
    journal = Journal(tmp_path / "journal.db", final=jobs.REGISTERED_OR_FINAL)
    client = ChainClient(
        chain.provider.web3, Account.from_key(operator.private_key), journal, addresses, load_abis(project_root(), CORE)
    )
    return Deployed(
        client,
        journal,
        licenses,
        record.content_digest,
        (first, second),
        creator,
        payer,
        other,
        operator,
        service,
        int(chain.chain_id),
    )
