"""Licences and micro-licensing: `ape run license COMMAND [options]`.

  attach            creator attaches licence terms to an asset
  buy               buy a licence (an ERC-1155 token) under some terms
  deposit           payer puts escrow in with a service, for metered use it serves
  request-withdrawal / cancel-withdrawal / withdraw-escrow
                    payer takes escrow back after the withdrawal delay, within the window
  sign              payer signs a cumulative voucher for a service and appends it to a voucher file
  show              read terms, escrow and settled amounts

Escrow is kept per (payer, currency, service): the service is whoever accepts the payer's
vouchers and serves the uses before they settle (an API operator: its `/v1/deployment` says
`service`), and only vouchers naming it draw on that escrow, so the escrow commands and `sign`
take `--service`. A withdrawal request unlocks after the contract's delay and expires
`WITHDRAWAL_WINDOW` (7 days) later if not withdrawn; then request again.

Amounts in: `1000` (base units), `0.01 ether`, `5 gwei`, `1.5 token` (scaled by the ERC-20's
decimals); `--currency` is `ETH` (the default; or its zero address) or an ERC-20's address.
Amounts out: in ETH or the token's units by its symbol and decimals, base units in parentheses
(`0.00000002 ETH (20000000000 wei)`); times in UTC ISO-8601, unix seconds in parentheses.
Every command takes --network, --account and --yes; nothing is broadcast on a live network
without confirmation. A mistake (a malformed address, unknown terms, too little money) ends the
command with one line saying what is wrong and exit status 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ape
import click

from agents.core.inputs import parse_bytes32
from agents.core.settlement import SignedVoucher, append_vouchers
from agents.core.vouchers import Voucher, signable_voucher
from agents.deploy.operator import Session, cli_errors, open_session
from scripts._cli import (
    ETH,
    Currency,
    OperatorCommand,
    currency_of,
    ensure_funds,
    erc20,
    parse_address,
    parse_currency,
    span,
    when,
)

PERPETUAL = 2**64 - 1


def account_options(command: Any) -> Any:
    command = click.option("--yes", is_flag=True, help="Broadcast on a live network without asking")(command)
    return click.option(
        "--account", "account_alias", default=None, help="ape account alias, or test:N on development chains"
    )(command)


def service_option(command: Any) -> Any:
    return click.option(
        "--service",
        required=True,
        help="The service the escrow is with: the address whose vouchers draw on it (an API's /v1/deployment "
        "says its service)",
    )(command)


def currency_option(command: Any) -> Any:
    return click.option(
        "--currency", default="ETH", show_default=True, help="ETH (or its zero address) or an allow-listed ERC-20"
    )(command)


def parse_service(text: str) -> str:
    """The service address given on the command line (not the zero address: no escrow is with it)."""
    return parse_address(text, "--service")


def terms_of(session: Session, terms_id: int) -> Any:
    """The terms, or a one-line error naming `LicenseManager__UnknownTerms` for an unknown id."""
    return session.read(session.core.licenses, "getTerms", terms_id)


def ensure_allowance(session: Session, currency: Currency, amount: int, yes: bool) -> None:
    """Approve the licence manager for `amount` of an ERC-20 when its allowance is short."""
    if currency.address == ETH or amount == 0:
        return
    token = erc20(currency.address)
    spender = str(session.core.licenses.address)
    if int(session.read(token, "allowance", str(session.account.address), spender)) < amount:
        action = f"Approve {currency.show(amount)} for the licence manager"
        session.transact(token, "approve", spender, amount, yes=yes, action=action)


def header(session: Session) -> None:
    click.echo(f"network   {session.target.choice} ({session.origin})")
    click.echo(f"account   {session.account.address}")


@click.group()
def cli() -> None:
    """Licence terms, purchases, escrow and vouchers."""


@cli.command(cls=OperatorCommand)
@click.option("--asset", required=True, help="Asset id (content digest), 64 hex digits")
@currency_option
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
        address = parse_currency(currency)
        session = open_session(ape, network, provider, account_alias)
        header(session)
        money = currency_of(session, address)
        terms = {
            "currency": money.address,
            "price": money.parse(price),
            "pricePerUse": money.parse(price_per_use),
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


@cli.command(cls=OperatorCommand)
@click.option("--terms", "terms_id", type=click.IntRange(min=1), required=True)
@click.option("--to", default=None, help="Receiver of the licence token (default: the account)")
@account_options
def buy(network, provider, terms_id, to, account_alias, yes):  # type: ignore[no-untyped-def]
    """Buy a licence under some terms; the price goes to the asset's revenue."""
    with cli_errors():
        receiver = parse_address(to, "--to") if to is not None else None
        session = open_session(ape, network, provider, account_alias)
        header(session)
        licenses = session.core.licenses
        terms = terms_of(session, terms_id)
        money = currency_of(session, str(terms.currency))
        receiver = receiver or str(session.account.address)
        price = int(terms.price)
        ensure_funds(session, money, price, f"the licence under terms {terms_id}")
        ensure_allowance(session, money, price, yes)
        value = price if money.address == ETH else 0
        action = f"Buy a licence under terms {terms_id} for {money.show(price)}"
        receipt = session.transact(licenses, "purchase", terms_id, receiver, value=value, yes=yes, action=action)
        event = receipt.events.filter(licenses.LicensePurchased)[0]
        expiry = "never" if event.expiresAt == PERPETUAL else when(int(event.expiresAt))
        click.echo(f"licence   {event.licenseId} to {receiver}, expires {expiry} (gas {receipt.gas_used:,})")


@cli.command(cls=OperatorCommand)
@click.option("--amount", required=True)
@currency_option
@service_option
@account_options
def deposit(network, provider, amount, currency, service, account_alias, yes):  # type: ignore[no-untyped-def]
    """Deposit escrow with a service, for metered uses it serves."""
    with cli_errors():
        service = parse_service(service)
        address = parse_currency(currency)
        session = open_session(ape, network, provider, account_alias)
        header(session)
        licenses = session.core.licenses
        money = currency_of(session, address)
        base = money.parse(amount)
        ensure_funds(session, money, base, "the deposit")
        ensure_allowance(session, money, base, yes)
        value = base if money.address == ETH else 0
        action = f"Deposit {money.show(base)} as escrow with service {service}"
        session.transact(licenses, "deposit", money.address, service, base, value=value, yes=yes, action=action)
        balance = int(licenses.escrowOf(session.account, money.address, service).balance)
        click.echo(f"escrow    {money.show(balance)} with {service}")


@cli.command("request-withdrawal", cls=OperatorCommand)
@click.option("--amount", required=True)
@currency_option
@service_option
@account_options
def request_withdrawal(network, provider, amount, currency, service, account_alias, yes):  # type: ignore[no-untyped-def]
    """Start the withdrawal delay for some escrow with a service (settlement can still draw on it
    meanwhile); replaces an earlier request. Withdraw it between unlock and expiry."""
    with cli_errors():
        service = parse_service(service)
        address = parse_currency(currency)
        session = open_session(ape, network, provider, account_alias)
        header(session)
        licenses = session.core.licenses
        money = currency_of(session, address)
        base = money.parse(amount)
        action = f"Request withdrawal of {money.show(base)} from escrow with service {service}"
        receipt = session.transact(licenses, "requestWithdrawal", address, service, base, yes=yes, action=action)
        unlock = int(receipt.events.filter(licenses.WithdrawalRequested)[0].unlockAt)
        click.echo(f"unlocks   at {when(unlock)}")
        click.echo(f"expires   at {when(unlock + int(licenses.WITHDRAWAL_WINDOW()))} unless withdrawn by then")


@cli.command("cancel-withdrawal", cls=OperatorCommand)
@currency_option
@service_option
@account_options
def cancel_withdrawal(network, provider, currency, service, account_alias, yes):  # type: ignore[no-untyped-def]
    """Cancel a pending withdrawal request (the escrow pays for uses again)."""
    with cli_errors():
        service = parse_service(service)
        address = parse_currency(currency)
        session = open_session(ape, network, provider, account_alias)
        header(session)
        licenses = session.core.licenses
        action = f"Cancel the withdrawal from escrow in {address} with service {service}"
        session.transact(licenses, "cancelWithdrawal", address, service, yes=yes, action=action)
        click.echo("cancelled the pending withdrawal")


@cli.command("withdraw-escrow", cls=OperatorCommand)
@currency_option
@click.option("--to", default=None, help="Receiver (default: the account)")
@service_option
@account_options
def withdraw_escrow(network, provider, currency, to, service, account_alias, yes):  # type: ignore[no-untyped-def]
    """Withdraw requested escrow with a service once the delay has passed (before the request expires)."""
    with cli_errors():
        service = parse_service(service)
        address = parse_currency(currency)
        receiver = parse_address(to, "--to") if to is not None else None
        session = open_session(ape, network, provider, account_alias)
        header(session)
        licenses = session.core.licenses
        money = currency_of(session, address)
        unlock = int(licenses.escrowOf(session.account, address, service)[2])
        if unlock == 0:
            raise click.ClickException(f"no withdrawal is pending from escrow with {service}: request one first")
        expires = unlock + int(licenses.WITHDRAWAL_WINDOW())
        if int(ape.chain.pending_timestamp) > expires:  # the contract refuses it too (WithdrawalExpired)
            raise click.ClickException(
                f"the withdrawal request expired at {when(expires)} unwithdrawn: request again "
                "(`ape run license request-withdrawal`; a new delay starts)"
            )
        receiver = receiver or str(session.account.address)
        action = f"Withdraw escrow in {money.symbol} with service {service} to {receiver}"
        receipt = session.transact(licenses, "withdrawEscrow", address, service, receiver, yes=yes, action=action)
        amount = int(receipt.events.filter(licenses.EscrowWithdrawn)[0].amount)
        click.echo(f"withdrawn {money.show(amount)} to {receiver}")


@cli.command(cls=OperatorCommand)
@click.option("--terms", "terms_id", type=click.IntRange(min=1), required=True)
@click.option("--uses", type=click.IntRange(min=1), help="Total uses so far (cumulative = uses x price per use)")
@click.option("--cumulative", help="Total owed so far on this channel (instead of --uses)")
@click.option("--valid-for", type=click.IntRange(min=60), default=7 * 86400, show_default=True, help="Seconds")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Voucher file to append to")
@service_option
@click.option("--account", "account_alias", default=None, help="The payer: ape account alias, or test:N")
def sign(network, provider, terms_id, uses, cumulative, valid_for, out, service, account_alias):  # type: ignore[no-untyped-def]
    """Sign a cumulative voucher for a service (no transaction) and append it to a voucher file."""
    with cli_errors():
        if (uses is None) == (cumulative is None):
            raise click.UsageError("give exactly one of --uses and --cumulative")
        service = parse_service(service)
        session = open_session(ape, network, provider, account_alias)
        licenses = session.core.licenses
        terms = terms_of(session, terms_id)
        if terms.pricePerUse == 0:
            raise click.ClickException(f"terms {terms_id} are not metered (no price per use)")
        money = currency_of(session, str(terms.currency))
        total = uses * int(terms.pricePerUse) if uses is not None else money.parse(cumulative)
        settled = int(licenses.settledOf(session.account, service, terms_id))
        if total <= settled:
            raise click.ClickException(
                f"cumulative {money.show(total)} is not above what is already settled ({money.show(settled)})"
            )
        voucher = Voucher(
            payer=session.account.address,
            service=service,
            asset=bytes(terms.asset),
            terms_id=terms_id,
            cumulative_amount=total,
            deadline=int(ape.chain.pending_timestamp) + valid_for,
        )
        signed = session.account.sign_message(signable_voucher(voucher, session.target.chain_id, licenses.address))
        if signed is None:
            raise click.ClickException("the account declined to sign")
        append_vouchers(out, [SignedVoucher(voucher, signed.encode_rsv())])
        click.echo(
            f"voucher   terms {terms_id}, service {service}, cumulative {money.show(total)} "
            f"(new: {money.show(total - settled)}), valid until {when(voucher.deadline)}, appended to {out}"
        )


@cli.command(cls=OperatorCommand)
@click.option("--terms", "terms_id", type=click.IntRange(min=1), default=None)
@click.option("--payer", default=None, help="Show escrow and settled amounts of this address (default: the account)")
@currency_option
@click.option("--service", default=None, help="The service of the escrow and channel to show (escrow is per service)")
@click.option("--account", "account_alias", default=None)
def show(network, provider, terms_id, payer, currency, service, account_alias):  # type: ignore[no-untyped-def]
    """Read terms, and with --service the escrow with that service and settled amounts (no
    transaction). Amounts are printed in ETH (or the token's units, by its symbol and decimals)
    with the base units in parentheses; times in UTC ISO-8601 with unix seconds in parentheses."""
    with cli_errors():
        service = parse_service(service) if service is not None else None
        who = parse_address(payer, "--payer", zero_ok=True) if payer is not None else None
        address = parse_currency(currency)
        session = open_session(ape, network, provider, account_alias)
        licenses = session.core.licenses
        who = who or str(session.account.address)
        if service is None:
            click.echo("escrow    is kept per service: give --service ADDRESS to show it")
        else:
            money = currency_of(session, address)
            balance, pending, unlock = licenses.escrowOf(who, address, service)
            click.echo(f"escrow    {who}: {money.show(int(balance))} with service {service}")
            if int(unlock):
                expires = int(unlock) + int(licenses.WITHDRAWAL_WINDOW())
                if int(ape.chain.pending_timestamp) > expires:
                    state = f"expired {when(expires)} unwithdrawn: request again"
                else:
                    state = f"expires {when(expires)}"
                click.echo(f"withdrawal {money.show(int(pending))} requested, unlocks {when(int(unlock))}, {state}")
            else:
                click.echo("withdrawal none requested")
        if terms_id is not None:
            t = terms_of(session, terms_id)
            money = currency_of(session, str(t.currency))
            duration = span(int(t.duration)) if int(t.duration) else "perpetual"
            click.echo(
                f"terms {terms_id}   asset 0x{bytes(t.asset).hex()}, currency {money.symbol} ({money.address}), "
                f"price {money.show(int(t.price))}, per use {money.show(int(t.pricePerUse))}, duration {duration}, "
                f"commercial {'yes' if t.commercialUse else 'no'}, derivatives "
                f"{'yes' if t.derivativesAllowed else 'no'} ({t.derivativeRoyaltyBps} bps), "
                f"active {'yes' if t.active else 'no'}"
            )
            if service is not None:
                settled = int(licenses.settledOf(who, service, terms_id))
                channel = f"payer {who}, service {service}, terms {terms_id}"
                click.echo(f"settled   {money.show(settled)} on the channel ({channel})")
