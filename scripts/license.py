"""Licences and micro-licensing: `ape run license COMMAND [options]`.

  attach            creator attaches licence terms to an asset
  buy               buy a licence (an ERC-1155 token) under some terms
  deposit           payer puts escrow in for metered use
  request-withdrawal / withdraw-escrow
                    payer takes escrow back after the withdrawal delay
  sign              payer signs a cumulative voucher and appends it to a voucher file
  show              read terms, escrow and settled amounts

Amounts: `1000` (base units), `0.01 ether`, `5 gwei`, `1.5 token` (scaled by the ERC-20's decimals).
Every command takes --network, --account and --yes; nothing is broadcast on a live network
without confirmation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ape
import click
from ape.cli import ConnectedProviderCommand

from agents.inputs import parse_amount, parse_bytes32
from agents.operator import Session, cli_errors, confirm_broadcast, open_session
from agents.settlement import SignedVoucher, append_vouchers
from agents.vouchers import Voucher, signable_voucher

ETH = "0x0000000000000000000000000000000000000000"
PERPETUAL = 2**64 - 1


def account_options(command: Any) -> Any:
    command = click.option("--yes", is_flag=True, help="Broadcast on a live network without asking")(command)
    return click.option(
        "--account", "account_alias", default=None, help="ape account alias, or test:N on development chains"
    )(command)


def currency_decimals(currency: str) -> int:
    if currency == ETH:
        return 18
    return int(ape.Contract(currency).decimals())


def amount_in(currency: str, text: str) -> int:
    return parse_amount(text, decimals=currency_decimals(currency))


def ensure_allowance(session: Session, currency: str, amount: int, yes: bool) -> None:
    """Approve the licence manager for `amount` of an ERC-20 when its allowance is short."""
    if currency == ETH or amount == 0:
        return
    token = ape.Contract(currency)
    spender = session.core.licenses
    if token.allowance(session.account, spender) < amount:
        confirm_broadcast(session.target, yes, f"Approve {amount} of {currency}")
        token.approve(spender, amount, sender=session.account)


def header(session: Session) -> None:
    click.echo(f"network   {session.target.choice} ({session.origin})")
    click.echo(f"account   {session.account.address}")


@click.group()
def cli() -> None:
    """Licence terms, purchases, escrow and vouchers."""


@cli.command(cls=ConnectedProviderCommand)
@click.option("--asset", required=True, help="Asset id (content digest), 64 hex digits")
@click.option("--currency", default=ETH, show_default=True, help="ETH (zero address) or an allow-listed ERC-20")
@click.option("--price", default="0", show_default=True, help="Price of a licence token")
@click.option("--price-per-use", default="0", show_default=True, help="Metered price per use (0: not metered)")
@click.option("--duration", type=click.IntRange(min=0), default=0, show_default=True, help="Seconds; 0 = perpetual")
@click.option("--derivative-bps", type=click.IntRange(0, 5000), default=0, show_default=True)
@click.option("--commercial/--no-commercial", default=True, show_default=True)
@click.option("--derivatives/--no-derivatives", default=False, show_default=True)
@account_options
def attach(  # type: ignore[no-untyped-def]
    network,
    provider,
    asset,
    currency,
    price,
    price_per_use,
    duration,
    derivative_bps,
    commercial,
    derivatives,
    account_alias,
    yes,
):
    """Attach licence terms to an asset you created."""
    with cli_errors():
        asset_id = parse_bytes32(asset, "--asset")
        session = open_session(ape, network, provider, account_alias)
        header(session)
        terms = {
            "currency": currency,
            "price": amount_in(currency, price),
            "pricePerUse": amount_in(currency, price_per_use),
            "duration": duration,
            "derivativeRoyaltyBps": derivative_bps,
            "commercialUse": commercial,
            "derivativesAllowed": derivatives,
        }
        licenses = session.core.licenses
        terms_id = int.from_bytes(session.simulate(licenses, "attachTerms", asset_id, terms)[:32], "big")
        action = f"Attach terms {terms_id} to 0x{asset_id.hex()}"
        receipt = session.transact(licenses, "attachTerms", asset_id, terms, yes=yes, action=action)
        click.echo(f"terms id  {terms_id} (gas {receipt.gas_used:,})")


@cli.command(cls=ConnectedProviderCommand)
@click.option("--terms", "terms_id", type=click.IntRange(min=1), required=True)
@click.option("--to", default=None, help="Receiver of the licence token (default: the account)")
@account_options
def buy(network, provider, terms_id, to, account_alias, yes):  # type: ignore[no-untyped-def]
    """Buy a licence under some terms; the price goes to the asset's revenue."""
    with cli_errors():
        session = open_session(ape, network, provider, account_alias)
        header(session)
        licenses = session.core.licenses
        terms = licenses.getTerms(terms_id)
        if terms.asset == b"\x00" * 32:
            raise click.ClickException(f"terms {terms_id} do not exist")
        receiver = to or session.account.address
        value = int(terms.price) if terms.currency == ETH else 0
        ensure_allowance(session, terms.currency, int(terms.price), yes)
        action = f"Buy a licence under terms {terms_id} for {terms.price}"
        receipt = session.transact(licenses, "purchase", terms_id, receiver, value=value, yes=yes, action=action)
        event = receipt.events.filter(licenses.LicensePurchased)[0]
        expiry = "never" if event.expiresAt == PERPETUAL else str(event.expiresAt)
        click.echo(f"licence   {event.licenseId} to {receiver}, expires {expiry} (gas {receipt.gas_used:,})")


@cli.command(cls=ConnectedProviderCommand)
@click.option("--amount", required=True)
@click.option("--currency", default=ETH, show_default=True)
@account_options
def deposit(network, provider, amount, currency, account_alias, yes):  # type: ignore[no-untyped-def]
    """Deposit escrow for metered use."""
    with cli_errors():
        session = open_session(ape, network, provider, account_alias)
        header(session)
        licenses = session.core.licenses
        base = amount_in(currency, amount)
        ensure_allowance(session, currency, base, yes)
        value = base if currency == ETH else 0
        action = f"Deposit {base} of {currency} as escrow"
        session.transact(licenses, "deposit", currency, base, value=value, yes=yes, action=action)
        click.echo(f"escrow    {licenses.escrowOf(session.account, currency).balance}")


@cli.command("request-withdrawal", cls=ConnectedProviderCommand)
@click.option("--amount", required=True)
@click.option("--currency", default=ETH, show_default=True)
@account_options
def request_withdrawal(network, provider, amount, currency, account_alias, yes):  # type: ignore[no-untyped-def]
    """Start the withdrawal delay for some escrow (settlement can still draw on it meanwhile)."""
    with cli_errors():
        session = open_session(ape, network, provider, account_alias)
        header(session)
        licenses = session.core.licenses
        base = amount_in(currency, amount)
        action = f"Request withdrawal of {base} of {currency}"
        receipt = session.transact(licenses, "requestWithdrawal", currency, base, yes=yes, action=action)
        unlock = receipt.events.filter(licenses.WithdrawalRequested)[0].unlockAt
        click.echo(f"unlocks   at {unlock} (unix time)")


@cli.command("withdraw-escrow", cls=ConnectedProviderCommand)
@click.option("--currency", default=ETH, show_default=True)
@click.option("--to", default=None, help="Receiver (default: the account)")
@account_options
def withdraw_escrow(network, provider, currency, to, account_alias, yes):  # type: ignore[no-untyped-def]
    """Withdraw requested escrow once the delay has passed."""
    with cli_errors():
        session = open_session(ape, network, provider, account_alias)
        header(session)
        licenses = session.core.licenses
        receiver = to or session.account.address
        action = f"Withdraw escrow in {currency} to {receiver}"
        receipt = session.transact(licenses, "withdrawEscrow", currency, receiver, yes=yes, action=action)
        click.echo(f"withdrawn {receipt.events.filter(licenses.EscrowWithdrawn)[0].amount} to {receiver}")


@cli.command(cls=ConnectedProviderCommand)
@click.option("--terms", "terms_id", type=click.IntRange(min=1), required=True)
@click.option("--uses", type=click.IntRange(min=1), help="Total uses so far (cumulative = uses x price per use)")
@click.option("--cumulative", help="Total owed so far on this channel (instead of --uses)")
@click.option("--valid-for", type=click.IntRange(min=60), default=7 * 86400, show_default=True, help="Seconds")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Voucher file to append to")
@click.option("--account", "account_alias", default=None, help="The payer: ape account alias, or test:N")
def sign(network, provider, terms_id, uses, cumulative, valid_for, out, account_alias):  # type: ignore[no-untyped-def]
    """Sign a cumulative voucher (no transaction) and append it to a voucher file."""
    with cli_errors():
        if (uses is None) == (cumulative is None):
            raise click.UsageError("give exactly one of --uses and --cumulative")
        session = open_session(ape, network, provider, account_alias)
        licenses = session.core.licenses
        terms = licenses.getTerms(terms_id)
        if terms.asset == b"\x00" * 32:
            raise click.ClickException(f"terms {terms_id} do not exist")
        if terms.pricePerUse == 0:
            raise click.ClickException(f"terms {terms_id} are not metered (no price per use)")
        total = uses * int(terms.pricePerUse) if uses is not None else amount_in(terms.currency, cumulative)
        settled = int(licenses.settledOf(session.account, terms_id))
        if total <= settled:
            raise click.ClickException(f"cumulative {total} is not above what is already settled ({settled})")
        voucher = Voucher(
            payer=session.account.address,
            asset=bytes(terms.asset),
            terms_id=terms_id,
            cumulative_amount=total,
            deadline=int(ape.chain.pending_timestamp) + valid_for,
        )
        signed = session.account.sign_message(signable_voucher(voucher, session.target.chain_id, licenses.address))
        if signed is None:
            raise click.ClickException("the account declined to sign")
        append_vouchers(out, [SignedVoucher(voucher, signed.encode_rsv())])
        click.echo(f"voucher   terms {terms_id}, cumulative {total} (new: {total - settled}), appended to {out}")


@cli.command(cls=ConnectedProviderCommand)
@click.option("--terms", "terms_id", type=click.IntRange(min=1), default=None)
@click.option("--payer", default=None, help="Show escrow and settled amounts of this address (default: the account)")
@click.option("--currency", default=ETH, show_default=True)
@click.option("--account", "account_alias", default=None)
def show(network, provider, terms_id, payer, currency, account_alias):  # type: ignore[no-untyped-def]
    """Read terms, escrow and settled amounts (no transaction)."""
    with cli_errors():
        session = open_session(ape, network, provider, account_alias)
        licenses = session.core.licenses
        who = payer or session.account.address
        balance, pending, unlock = licenses.escrowOf(who, currency)
        click.echo(f"escrow    {who}: {balance} ({pending} requested, unlocks {unlock or '-'})")
        if terms_id is not None:
            t = licenses.getTerms(terms_id)
            click.echo(
                f"terms {terms_id}: asset 0x{bytes(t.asset).hex()}, currency {t.currency}, price {t.price}, "
                f"per use {t.pricePerUse}, duration {t.duration or 'perpetual'}, derivatives "
                f"{'yes' if t.derivativesAllowed else 'no'} ({t.derivativeRoyaltyBps} bps), active {bool(t.active)}"
            )
            click.echo(f"settled   {licenses.settledOf(who, terms_id)}")
