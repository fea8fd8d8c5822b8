"""Settle signed vouchers: `ape run settle --vouchers FILE --account SERVICE [--max-batch N] [--dry-run]`.

Only a service may settle the vouchers that name it, so the account is the service. Reads a
voucher file (one JSON voucher per line, as `ape run license sign` appends them), keeps the
newest voucher of each channel (payer, service, terms), leaves out what the contract would
revert on or skip (saying why: another service's, settled already, beyond the payer's escrow
with the service, expired, ...), groups the rest by currency, orders each group by asset and
payer, and sends one `settle(currency, service, vouchers, walletSignatures)` per batch of at
most 192 vouchers (`MAX_VOUCHERS`). Every batch is simulated before it is sent, so a batch that
would revert is never broadcast. A voucher settled by another settler of the service, left
uncovered by a withdrawal, or refused by its ERC-1271 wallet between planning and mining is
skipped by the contract, not reverted: the rest of its batch still settles, and the receipt's
`VoucherSkipped` events are printed with their reasons. The money moves from the payers' escrow
to the assets' revenue, never to the sender.
"""

from __future__ import annotations

from pathlib import Path

import ape
import click
from ape.cli import ConnectedProviderCommand

from agents.core.settlement import (
    ALREADY_SETTLED,
    MAX_VOUCHERS,
    SKIP_REASONS,
    SkipKind,
    TermsView,
    load_vouchers,
    plan_settlement,
)
from agents.deploy.operator import cli_errors, confirm_broadcast, open_session


@click.command(cls=ConnectedProviderCommand)
@click.option("--vouchers", "path", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--max-batch", type=click.IntRange(1, MAX_VOUCHERS), default=MAX_VOUCHERS, show_default=True)
@click.option("--dry-run", is_flag=True, help="Plan and simulate only; send nothing")
@click.option(
    "--account",
    "account_alias",
    default=None,
    help="The service (its ape account alias, or test:N on development chains): only it may settle its vouchers",
)
@click.option("--yes", is_flag=True, help="Broadcast on a live network without asking")
def cli(network, provider, path, max_batch, dry_run, account_alias, yes):  # type: ignore[no-untyped-def]
    """Settle the vouchers naming the account (the service) in a voucher file, in as few
    transactions as the batch cap allows."""
    with cli_errors():
        vouchers = load_vouchers(path)
        session = open_session(ape, network, provider, account_alias)
        licenses = session.core.licenses
        service = str(session.account.address)
        click.echo(f"network   {session.target.choice} ({session.origin})")
        click.echo(f"service   {service} (the account: only a service may settle its vouchers)")
        click.echo(f"vouchers  {len(vouchers)} in {path}")

        def terms_of(terms_id: int) -> TermsView | None:
            t = licenses.getTerms(terms_id)
            if bytes(t.asset) == b"\x00" * 32:
                return None
            return TermsView(asset=bytes(t.asset), currency=str(t.currency), price_per_use=int(t.pricePerUse))

        def settled_of(payer: str, named: str, terms_id: int) -> int:
            return int(licenses.settledOf(payer, named, terms_id))

        def escrow_of(payer: str, currency: str, named: str) -> int:
            return int(licenses.escrowOf(payer, currency, named)[0])

        plan = plan_settlement(
            vouchers,
            now=int(ape.chain.pending_timestamp),
            settled_of=settled_of,
            terms_of=terms_of,
            escrow_of=escrow_of,
            service=service,
            max_vouchers=max_batch,
        )
        for skipped in plan.skipped:
            v = skipped.voucher.voucher
            click.echo(
                f"skip      payer {v.payer} service {v.service} terms {v.terms_id} cumulative {v.cumulative_amount}: "
                f"{skipped.reason}"
            )
        if not plan.batches:
            click.echo("nothing to settle")
            return
        for currency, amount in plan.amount_by_currency().items():
            click.echo(f"to settle {amount} in {currency}")
        click.echo(f"plan      {plan.voucher_count} vouchers in {len(plan.batches)} transaction(s)")
        payers = {sv.channel[0] for batch in plan.batches for sv in batch.vouchers}
        wallets = {payer for payer in payers if len(bytes(session.web3.eth.get_code(payer))) > 0}  # ERC-1271
        for batch in plan.batches:
            session.simulate(licenses, "settle", *batch.call_args(wallets))
            click.echo(f"simulated {len(batch.vouchers)} vouchers in {batch.currency}: would succeed")
        if dry_run:
            return
        confirm_broadcast(session.target, yes, f"Send {len(plan.batches)} settle transaction(s)")
        for number, batch in enumerate(plan.batches, start=1):
            receipt = licenses.settle(*batch.call_args(wallets), sender=session.account)
            settled = len(receipt.events.filter(licenses.VoucherSettled))
            for event in receipt.events.filter(licenses.VoucherSkipped):
                kind = SKIP_REASONS[int(event.reason)]
                reason = ALREADY_SETTLED if kind is SkipKind.ALREADY_SETTLED else kind.value.replace("_", " ")
                click.echo(
                    f"skipped   payer {event.payer} terms {event.termsId} cumulative {event.cumulativeAmount} "
                    f"when mined: {reason}"
                )
            per = receipt.gas_used / len(batch.vouchers)
            click.echo(
                f"settled   batch {number}/{len(plan.batches)}: {settled} of {len(batch.vouchers)} vouchers, gas "
                f"{receipt.gas_used:,} ({per:,.0f} per voucher), tx {receipt.txn_hash}"
            )
