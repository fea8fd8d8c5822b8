"""Settle signed vouchers: `ape run settle --vouchers FILE [--max-batch N] [--dry-run]`.

Reads a voucher file (one JSON voucher per line, as `ape run license sign` appends them), keeps
the newest voucher of each channel, drops what would revert (saying why), orders the rest by
asset and payer, and sends one `settle` per currency and batch of at most 192 vouchers (`MAX_VOUCHERS`). Every batch
is simulated before it is sent, so a batch that would revert is never broadcast. Anyone may settle:
the money moves from the payers' escrow to the assets' revenue, never to the sender.
"""

from __future__ import annotations

from pathlib import Path

import ape
import click
from ape.cli import ConnectedProviderCommand

from agents.operator import cli_errors, confirm_broadcast, open_session
from agents.settlement import MAX_VOUCHERS, TermsView, load_vouchers, plan_settlement


@click.command(cls=ConnectedProviderCommand)
@click.option("--vouchers", "path", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--max-batch", type=click.IntRange(1, MAX_VOUCHERS), default=MAX_VOUCHERS, show_default=True)
@click.option("--dry-run", is_flag=True, help="Plan and simulate only; send nothing")
@click.option("--account", "account_alias", default=None, help="ape account alias, or test:N on development chains")
@click.option("--yes", is_flag=True, help="Broadcast on a live network without asking")
def cli(network, provider, path, max_batch, dry_run, account_alias, yes):  # type: ignore[no-untyped-def]
    """Settle the vouchers in a voucher file in as few transactions as the batch cap allows."""
    with cli_errors():
        vouchers = load_vouchers(path)
        session = open_session(ape, network, provider, account_alias)
        licenses = session.core.licenses
        click.echo(f"network   {session.target.choice} ({session.origin})")
        click.echo(f"vouchers  {len(vouchers)} in {path}")

        def terms_of(terms_id: int) -> TermsView | None:
            t = licenses.getTerms(terms_id)
            if bytes(t.asset) == b"\x00" * 32:
                return None
            return TermsView(asset=bytes(t.asset), currency=str(t.currency), price_per_use=int(t.pricePerUse))

        def settled_of(payer: str, terms_id: int) -> int:
            return int(licenses.settledOf(payer, terms_id))

        plan = plan_settlement(
            vouchers,
            now=int(ape.chain.pending_timestamp),
            settled_of=settled_of,
            terms_of=terms_of,
            max_vouchers=max_batch,
        )
        for skipped in plan.skipped:
            v = skipped.voucher.voucher
            click.echo(
                f"skip      payer {v.payer} terms {v.terms_id} cumulative {v.cumulative_amount}: {skipped.reason}"
            )
        if not plan.batches:
            click.echo("nothing to settle")
            return
        for currency, amount in plan.amount_by_currency().items():
            click.echo(f"to settle {amount} in {currency}")
        click.echo(f"plan      {plan.voucher_count} vouchers in {len(plan.batches)} transaction(s)")
        for currency, batch in plan.batches:
            calls = [sv.as_call_tuple() for sv in batch]
            session.simulate(licenses, "settle", currency, calls)
            click.echo(f"simulated {len(batch)} vouchers in {currency}: would succeed")
        if dry_run:
            return
        confirm_broadcast(session.target, yes, f"Send {len(plan.batches)} settle transaction(s)")
        for number, (currency, batch) in enumerate(plan.batches, start=1):
            receipt = licenses.settle(currency, [sv.as_call_tuple() for sv in batch], sender=session.account)
            per = receipt.gas_used / len(batch)
            click.echo(
                f"settled   batch {number}/{len(plan.batches)}: {len(batch)} vouchers, gas {receipt.gas_used:,} "
                f"({per:,.0f} per voucher), tx {receipt.txn_hash}"
            )
