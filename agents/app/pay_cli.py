"""`proofmint pay URL`: one paid fetch from the API, the x402 round trip done for you.

It fetches URL; on `402 Payment Required` it signs the next cumulative voucher of the payer's
channel for the offer (`agents.api.client.PayingClient`), with the payer's key from an
environment variable (never the command line), and fetches again with `PAYMENT-SIGNATURE`. The
voucher draws on the payer's escrow with the offer's service (`ape run license deposit`).
The body goes to `-o FILE` or standard output; what was paid goes to standard error.

What it signs is bounded whatever the server says: one use at most `--max-per-use` above the
newest voucher of the payer's own that the server shows for the channel (a run in a fresh
process catches up from it; a claim without one is refused), at most `--budget` in the run, with
a deadline at most `--max-deadline` ahead; `--chain-id`, `--settlement` and `--service` refuse
offers for any other chain, contract or service.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from agents.app.keys import key_from_env
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


def _duration(ctx: click.Context, param: click.Parameter, value: str) -> int:
    """Seconds from `90`, `90s`, `15m`, `36h` or `7d`."""
    units = {"s": 1, "m": 60, "h": 3_600, "d": 86_400}
    text = value.strip().lower()
    number, unit = (text[:-1], units[text[-1]]) if text[-1:] in units else (text, 1)
    if not (number.isascii() and number.isdigit()) or int(number) == 0:
        raise click.BadParameter(f"{value!r} is not a duration (for example 3600, 36h, 7d)")
    return int(number) * unit


def _address(name: str, value: str | None) -> str | None:
    from eth_utils.address import is_address, to_checksum_address

    if value is not None and not is_address(value):
        raise click.BadParameter(f"{value!r} is not an address", param_hint=name)
    return to_checksum_address(value) if value is not None else None


async def _fetch(url: str, key: str, **limits: Any) -> tuple[Paid, PayingClient]:
    import aiohttp

    from agents.api.client import PayingClient

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        client = PayingClient(session, key, **limits)
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
@click.option(
    "--budget",
    default=None,
    callback=_amount,
    help="Refuse to add more than this to the payer's channel in this run (an amount; default: --max-per-use alone)",
)
@click.option(
    "--max-deadline",
    default="7d",
    show_default=True,
    callback=_duration,
    help="Refuse to sign a voucher valid longer than this (seconds, or 36h, 7d): it can be settled until then",
)
@click.option("--chain-id", type=click.IntRange(min=1), default=None, help="Pay only on this chain")
@click.option("--settlement", default=None, help="Pay only vouchers for this LicenseManager address")
@click.option("--service", default=None, help="Pay only this service address (default: the one the offer names)")
def pay_command(
    url: str,
    out: Path,
    key_env: str,
    max_per_use: int | None,
    budget: int | None,
    max_deadline: int,
    chain_id: int | None,
    settlement: str | None,
    service: str | None,
) -> None:
    """Fetch URL from a proofmint API, paying per use with a signed voucher when it answers 402.

    For example, after `proofmint up --rpc-port 8545` and `ape run license attach ... --price-per-use
    0.001ether`: PROOFMINT_PAYER_KEY=0x... proofmint pay http://127.0.0.1:8080/v1/assets/0xDIGEST/content -o image.png
    (add --chain-id, --settlement and --service from its /v1/deployment to pay that deployment only).
    """
    if not url.startswith(("http://", "https://")):
        raise click.BadParameter(f"{url!r} is not an http(s) URL", param_hint="URL")
    limits = {
        "max_per_use": max_per_use,
        "budget": budget,
        "max_deadline_s": max_deadline,
        "deadline_s": min(3_600, max_deadline),
        "expect_chain_id": chain_id,
        "expect_settlement": _address("--settlement", settlement),
        "expect_service": _address("--service", service),
    }
    key = key_from_env(key_env, "payer")
    if str(out) != "-" and not out.absolute().parent.is_dir():
        raise click.BadParameter(f"{out.parent} is not a folder", param_hint="--out")
    paid, client = asyncio.run(_fetch(url, key, **limits))
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
        ((channel, voucher),) = client.channels.items()
        click.echo(
            f"paid {paid.paid} wei as {client.address} to {channel.service} (terms {channel.terms_id}; "
            f"{voucher.voucher.cumulative_amount} wei on this channel so far, voucher valid until "
            f"{voucher.voucher.deadline}); {len(paid.body)} bytes ({paid.content_type}) to {where}",
            err=True,
        )
    else:
        click.echo(f"free: {len(paid.body)} bytes ({paid.content_type}) to {where}", err=True)
