"""`proofmint pay URL`: one paid fetch from the API, the x402 round trip done for you.

It fetches URL; on `402 Payment Required` it signs the next cumulative voucher of the payer's
channel for the offer (`agents.api.client.PayingClient`), with the payer's key from an
environment variable (never the command line), and fetches again with `PAYMENT-SIGNATURE`. The
voucher draws on the payer's escrow with the offer's service (`ape run license deposit`).
The body goes to `-o FILE` or standard output; what was paid goes to standard error.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from agents.core.errors import PermanentError

if TYPE_CHECKING:
    from agents.api.client import Paid, PayingClient

DEFAULT_KEY_ENV = "PROOFMINT_PAYER_KEY"


def _amount(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    from agents.core.inputs import InputError, parse_amount

    if value is None:
        return None
    try:
        return parse_amount(value)
    except InputError as exc:
        raise click.BadParameter(str(exc)) from None


def _payer_key(key_env: str) -> str:
    from eth_account import Account

    key = os.environ.get(key_env, "").strip()
    if not key:
        raise click.UsageError(f"set ${key_env} to the payer's private key (0x and 64 hex digits)")
    try:
        Account.from_key(key)
    except (ValueError, TypeError):
        raise click.UsageError(f"${key_env} is not a private key (0x and 64 hex digits)") from None
    return key


async def _fetch(
    url: str, key: str, max_per_use: int | None, budget: int | None, service: str | None
) -> tuple[Paid, PayingClient]:
    import aiohttp

    from agents.api.client import PayingClient

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        client = PayingClient(session, key, max_per_use=max_per_use, budget=budget, expect_service=service)
        try:
            return await client.fetch(url), client
        except aiohttp.ClientError as exc:
            raise PermanentError(f"cannot fetch {url}: {exc or type(exc).__name__}") from None
        except TimeoutError:
            raise PermanentError(f"{url} did not answer within 60 s") from None


@click.command("pay")
@click.argument("url")
@click.option(
    "-o",
    "--out",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    default=Path("-"),
    show_default=True,
    help="Where the paid-for bytes go (-: standard output)",
)
@click.option("--key-env", default=DEFAULT_KEY_ENV, show_default=True, help="Env var holding the payer's private key")
@click.option(
    "--max-per-use",
    default="0.01 ether",
    show_default=True,
    callback=_amount,
    help="Refuse an offer above this price per use (an amount: 1000, 0.001 ether, 5 gwei)",
)
@click.option("--service", default=None, help="Pay only this service address (default: the one the offer names)")
def pay_command(url: str, out: Path, key_env: str, max_per_use: int | None, service: str | None) -> None:
    """Fetch URL from a proofmint API, paying per use with a signed voucher when it answers 402.

    For example, after `proofmint up --rpc-port 8545` and `ape run license attach ... --price-per-use
    0.001ether`: PROOFMINT_PAYER_KEY=0x... proofmint pay http://127.0.0.1:8080/v1/assets/0xDIGEST/content -o image.png
    """
    from eth_utils.address import is_address

    if not url.startswith(("http://", "https://")):
        raise click.BadParameter(f"{url!r} is not an http(s) URL", param_hint="URL")
    if service is not None and not is_address(service):
        raise click.BadParameter(f"{service!r} is not an address", param_hint="--service")
    key = _payer_key(key_env)
    if str(out) != "-" and not out.absolute().parent.is_dir():
        raise click.BadParameter(f"{out.parent} is not a folder", param_hint="--out")
    paid, client = asyncio.run(_fetch(url, key, max_per_use, None, service))
    if str(out) == "-":
        sys.stdout.buffer.write(paid.body)
        sys.stdout.buffer.flush()
    else:
        try:
            out.write_bytes(paid.body)
        except OSError as exc:
            raise click.ClickException(f"cannot write {out}: {exc.strerror}") from None
    where = "standard output" if str(out) == "-" else str(out)
    if paid.paid:
        ((service_address, terms_id), cumulative), *_ = client.channels.items()
        click.echo(
            f"paid {paid.paid} wei as {client.address} to {service_address} (terms {terms_id}; "
            f"{cumulative} wei on this channel so far); {len(paid.body)} bytes ({paid.content_type}) to {where}",
            err=True,
        )
    else:
        click.echo(f"free: {len(paid.body)} bytes ({paid.content_type}) to {where}", err=True)
