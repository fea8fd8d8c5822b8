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

Amounts: `1000` (base units), `0.01 ether`, `5 gwei`, `1.5 token` (scaled by the ERC-20's decimals).
Every command takes --network, --account and --yes; nothing is broadcast on a live network
without confirmation.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import ape
import click
from ape.cli import ConnectedProviderCommand
from eth_utils.address import is_address, to_checksum_address

from agents.core.inputs import InputError, parse_amount, parse_bytes32
from agents.core.settlement import SignedVoucher, append_vouchers
from agents.core.vouchers import Voucher, signable_voucher
from agents.deploy.operator import Session, cli_errors, confirm_broadcast, open_session

ETH = "0x0000000000000000000000000000000000000000"
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


def parse_service(text: str) -> str:
    """The service address given on the command line (not the zero address: no escrow is with it)."""
    if not is_address(text) or int(text, 16) == 0:
        raise InputError(f"--service: expected a non-zero address (0x and 40 hex digits), got {text!r}")
    return str(to_checksum_address(text))


def when(unix: int) -> str:
    """A chain timestamp as unix seconds and UTC."""
    return f"{unix} ({time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(unix))})"


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
@service_option
@account_options
def deposit(network, provider, amount, currency, service, account_alias, yes):  # type: ignore[no-untyped-def]
    """Deposit escrow with a service, for metered uses it serves."""
    with cli_errors():
        service = parse_service(service)
        session = open_session(ape, network, provider, account_alias)
        header(session)
        licenses = session.core.licenses
        base = amount_in(currency, amount)
        ensure_allowance(session, currency, base, yes)
        value = base if currency == ETH else 0
        action = f"Deposit {base} of {currency} as escrow with service {service}"
        session.transact(licenses, "deposit", currency, service, base, value=value, yes=yes, action=action)
        click.echo(f"escrow    {licenses.escrowOf(session.account, currency, service).balance} with {service}")


@cli.command("request-withdrawal", cls=ConnectedProviderCommand)
@click.option("--amount", required=True)
@click.option("--currency", default=ETH, show_default=True)
@service_option
@account_options
def request_withdrawal(network, provider, amount, currency, service, account_alias, yes):  # type: ignore[no-untyped-def]
    """Start the withdrawal delay for some escrow with a service (settlement can still draw on it
    meanwhile); replaces an earlier request. Withdraw it between unlock and expiry."""
    with cli_errors():
        service = parse_service(service)
        session = open_session(ape, network, provider, account_alias)
        header(session)
        licenses = session.core.licenses
        base = amount_in(currency, amount)
        action = f"Request withdrawal of {base} of {currency} from escrow with service {service}"
        receipt = session.transact(licenses, "requestWithdrawal", currency, service, base, yes=yes, action=action)
        unlock = int(receipt.events.filter(licenses.WithdrawalRequested)[0].unlockAt)
        click.echo(f"unlocks   at {when(unlock)}")
        click.echo(f"expires   at {when(unlock + int(licenses.WITHDRAWAL_WINDOW()))} unless withdrawn by then")


@cli.command("cancel-withdrawal", cls=ConnectedProviderCommand)
@click.option("--currency", default=ETH, show_default=True)
@service_option
@account_options
def cancel_withdrawal(network, provider, currency, service, account_alias, yes):  # type: ignore[no-untyped-def]
    """Cancel a pending withdrawal request (the escrow pays for uses again)."""
    with cli_errors():
        service = parse_service(service)
        session = open_session(ape, network, provider, account_alias)
        header(session)
        licenses = session.core.licenses
        action = f"Cancel the withdrawal from escrow in {currency} with service {service}"
        session.transact(licenses, "cancelWithdrawal", currency, service, yes=yes, action=action)
        click.echo("cancelled the pending withdrawal")


@cli.command("withdraw-escrow", cls=ConnectedProviderCommand)
@click.option("--currency", default=ETH, show_default=True)
@click.option("--to", default=None, help="Receiver (default: the account)")
@service_option
@account_options
def withdraw_escrow(network, provider, currency, to, service, account_alias, yes):  # type: ignore[no-untyped-def]
    """Withdraw requested escrow with a service once the delay has passed (before the request expires)."""
    with cli_errors():
        service = parse_service(service)
        session = open_session(ape, network, provider, account_alias)
        header(session)
        licenses = session.core.licenses
        unlock = int(licenses.escrowOf(session.account, currency, service)[2])
        if unlock == 0:
            raise click.ClickException(f"no withdrawal is pending from escrow with {service}: request one first")
        expires = unlock + int(licenses.WITHDRAWAL_WINDOW())
        if int(ape.chain.pending_timestamp) > expires:  # the contract refuses it too (WithdrawalExpired)
            raise click.ClickException(
                f"the withdrawal request expired at {when(expires)} unwithdrawn: request again "
                "(`ape run license request-withdrawal`; a new delay starts)"
            )
        receiver = to or session.account.address
        action = f"Withdraw escrow in {currency} with service {service} to {receiver}"
        receipt = session.transact(licenses, "withdrawEscrow", currency, service, receiver, yes=yes, action=action)
        click.echo(f"withdrawn {receipt.events.filter(licenses.EscrowWithdrawn)[0].amount} to {receiver}")


@cli.command(cls=ConnectedProviderCommand)
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
        terms = licenses.getTerms(terms_id)
        if terms.asset == b"\x00" * 32:
            raise click.ClickException(f"terms {terms_id} do not exist")
        if terms.pricePerUse == 0:
            raise click.ClickException(f"terms {terms_id} are not metered (no price per use)")
        total = uses * int(terms.pricePerUse) if uses is not None else amount_in(terms.currency, cumulative)
        settled = int(licenses.settledOf(session.account, service, terms_id))
        if total <= settled:
            raise click.ClickException(f"cumulative {total} is not above what is already settled ({settled})")
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
            f"voucher   terms {terms_id}, service {service}, cumulative {total} (new: {total - settled}), "
            f"appended to {out}"
        )


@cli.command(cls=ConnectedProviderCommand)
@click.option("--terms", "terms_id", type=click.IntRange(min=1), default=None)
@click.option("--payer", default=None, help="Show escrow and settled amounts of this address (default: the account)")
@click.option("--currency", default=ETH, show_default=True)
@click.option("--service", default=None, help="The service of the escrow and channel to show (escrow is per service)")
@click.option("--account", "account_alias", default=None)
def show(network, provider, terms_id, payer, currency, service, account_alias):  # type: ignore[no-untyped-def]
    """Read terms, and with --service the escrow with that service and settled amounts (no transaction)."""
    with cli_errors():
        service = parse_service(service) if service is not None else None
        session = open_session(ape, network, provider, account_alias)
        licenses = session.core.licenses
        who = payer or session.account.address
        if service is None:
            click.echo("escrow    is kept per service: give --service ADDRESS to show it")
        else:
            balance, pending, unlock = licenses.escrowOf(who, currency, service)
            if int(unlock):
                expires = int(unlock) + int(licenses.WITHDRAWAL_WINDOW())
                state = "expired" if int(ape.chain.pending_timestamp) > expires else "expires"
                request = f"{pending} requested, unlocks {when(int(unlock))}, {state} {when(expires)}"
            else:
                request = "no withdrawal requested"
            click.echo(f"escrow    {who}: {balance} with service {service} ({request})")
        if terms_id is not None:
            t = licenses.getTerms(terms_id)
            click.echo(
                f"terms {terms_id}: asset 0x{bytes(t.asset).hex()}, currency {t.currency}, price {t.price}, "
                f"per use {t.pricePerUse}, duration {t.duration or 'perpetual'}, derivatives "
                f"{'yes' if t.derivativesAllowed else 'no'} ({t.derivativeRoyaltyBps} bps), active {bool(t.active)}"
            )
            if service is not None:
                click.echo(f"settled   {licenses.settledOf(who, service, terms_id)}")
