"""What the `ape run` scripts share on the command line: the command class, the parsing of
addresses and currencies, and how amounts and times are printed.

`ape run` lists every `scripts/*.py` as a command except files whose name starts with `_`, so
this module is imported by the scripts (`from scripts._cli import ...`; ape puts the project root
on `sys.path` while it loads them) and is never a command itself.

- `OperatorCommand`: ape's `ConnectedProviderCommand`, but a network it cannot connect to (an
  unset RPC variable, nothing listening) ends the command with one line saying what to do.
- `parse_address` / `parse_currency`: addresses typed on the command line, checked before
  anything connects.
- `Currency`: ETH or an ERC-20 with its symbol and decimals; `Currency.show` prints an amount in
  those units with the base units beside it in parentheses (`0.00000002 ETH (20000000000 wei)`),
  so a person reads the first and a script parses the second.
- `when`: a chain timestamp as UTC ISO-8601, the unix seconds beside it in parentheses; `span`
  a duration.
- `ensure_funds`: refuse, before simulating, a payment the account cannot make.
"""

from __future__ import annotations

import re
import time
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import Any

import click
from ape.cli import ConnectedProviderCommand
from eth_utils.address import is_address, to_checksum_address

from agents.core.inputs import InputError, parse_amount
from agents.core.reverts import WouldRevertError
from agents.deploy.operator import Session

ETH = "0x0000000000000000000000000000000000000000"
ERC20_ABI: list[dict[str, Any]] = [
    {
        "type": "function",
        "name": name,
        "stateMutability": "view",
        "inputs": [{"name": n, "type": "address"} for n in inputs],
        "outputs": [{"name": "", "type": output}],
    }
    for name, inputs, output in (
        ("decimals", (), "uint8"),
        ("symbol", (), "string"),
        ("balanceOf", ("owner",), "uint256"),
        ("allowance", ("owner", "spender"), "uint256"),
    )
] + [
    {
        "type": "function",
        "name": "approve",
        "stateMutability": "nonpayable",
        "inputs": [{"name": "spender", "type": "address"}, {"name": "amount", "type": "uint256"}],
        "outputs": [{"name": "", "type": "bool"}],
    }
]
"""The part of ERC-20 the scripts use: a token needs no ABI of its own (nor an explorer)."""

_ENV_VAR = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")


class OperatorCommand(ConnectedProviderCommand):
    """A script command connected to `--network`; a failure to connect is one line that says
    what to do (which variable to set, which node to start) instead of ape's stack dump.
    `invoke` is ape 0.8's `ConnectedProviderCommand.invoke` (its `parse_network` and `_invoke`)
    with the connection alone guarded: errors inside the command are `cli_errors`' to report."""

    def invoke(self, ctx: click.Context) -> Any:
        from ape.cli.commands import parse_network
        from ape.exceptions import ApeException

        if self.callback is None:
            return None
        chosen = ctx.params.get("network")
        with ExitStack() as stack:
            try:
                network_ctx = parse_network(ctx)
                provider = stack.enter_context(network_ctx) if network_ctx is not None else None
            except (ApeException, OSError) as exc:
                raise click.ClickException(connect_failure(chosen, exc)) from exc
            return self._invoke(ctx, provider=provider)


def connect_failure(chosen: Any, exc: Exception) -> str:
    """One line for a network ape could not connect to, saying what to do."""
    message = " ".join(str(exc).split())
    uri: Any = chosen if isinstance(chosen, str) else None
    with suppress(Exception):  # a provider whose URI is the unset variable raises on reading it
        uri = uri or getattr(chosen, "uri", None)
    network = getattr(chosen, "network", None)
    name = f"{network.ecosystem.name}:{network.name}" if network is not None and network.name != "custom" else None
    where = name or str(uri or chosen)
    if (variable := _ENV_VAR.search(message)) is not None:
        return (
            f"{where} has no node URL: ape-config.yaml reads it from ${variable.group(1)}, which is not set; "
            f"export {variable.group(1)}=https://... (your RPC provider's URL) and run again"
        )
    if "no (supported) node found" in message.lower() or isinstance(exc, OSError):
        return (
            f"no node answers at {uri or where}: start it (for a local chain `anvil --port PORT`) or give "
            f"--network the URL of one that runs ({message})"
        )
    return f"cannot connect to {where}: {message}"


def parse_address(text: str, option: str, *, zero_ok: bool = False) -> str:
    """An address typed for `option`, checksummed; InputError saying what was expected."""
    if not is_address(text) or (not zero_ok and int(text, 16) == 0):
        kind = "an address" if zero_ok else "a non-zero address"
        raise InputError(f"{option}: expected {kind} (0x and 40 hex digits), got {text!r}")
    return str(to_checksum_address(text))


def parse_currency(text: str) -> str:
    """`--currency`: ETH (the word, or the zero address) or an ERC-20's address."""
    if text.strip().lower() in ("eth", "ether"):
        return ETH
    if not is_address(text):
        raise InputError(
            f"--currency: expected ETH (or its zero address {ETH}) or an allow-listed ERC-20's address "
            f"(0x and 40 hex digits), got {text!r}"
        )
    return str(to_checksum_address(text))


def erc20(address: str) -> Any:
    """An ERC-20 as an ape contract, by the standard ABI (no explorer, no project artifact)."""
    import ape

    return ape.chain.contracts.instance_at(address, abi=ERC20_ABI, fetch_from_explorer=False, detect_proxy=False)


def _plain(value: Decimal) -> str:
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


@dataclass(frozen=True)
class Currency:
    """A currency as the scripts print it."""

    address: str
    symbol: str
    decimals: int
    base_unit: str
    """What the raw amount is counted in: `wei` for ETH, `base units` for a token."""

    def show(self, amount: int) -> str:
        with localcontext(prec=120):
            units = Decimal(amount).scaleb(-self.decimals)
        return f"{_plain(units)} {self.symbol} ({amount} {self.base_unit})"

    def parse(self, text: str) -> int:
        return parse_amount(text, decimals=self.decimals)


ETHER = Currency(ETH, "ETH", 18, "wei")


def currency_of(session: Session, address: str) -> Currency:
    """ETH, or the ERC-20 at `address` with its symbol and decimals (read from the token); an
    address without code is refused with a line saying what `--currency` takes."""
    if address == ETH:
        return ETHER
    if len(bytes(session.web3.eth.get_code(address))) == 0:
        raise InputError(
            f"--currency {address}: no contract there on {session.target.choice}; give ETH or the address of an "
            "allow-listed ERC-20"
        )
    token = erc20(address)
    try:
        decimals = int(session.read(token, "decimals"))
    except (WouldRevertError, ValueError, TypeError) as exc:  # a contract without decimals(): not an ERC-20
        raise InputError(f"--currency {address}: not an ERC-20 (decimals() fails: {exc})") from exc
    try:
        symbol = str(session.read(token, "symbol")).strip() or address
    except (WouldRevertError, ValueError, TypeError):  # symbol() is optional in ERC-20
        symbol = address
    return Currency(address, symbol, decimals, "base units")


def when(unix: int) -> str:
    """A chain timestamp as UTC ISO-8601, unix seconds in parentheses."""
    return f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(unix))} (unix {unix})"


def span(seconds: int) -> str:
    """A duration in days, hours, minutes and seconds, the seconds in parentheses."""
    parts, left = [], seconds
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if left >= size:
            parts.append(f"{left // size}{unit}")
            left %= size
    return f"{' '.join(parts) or '0s'} ({seconds} s)"


def ensure_funds(session: Session, currency: Currency, amount: int, purpose: str) -> None:
    """Refuse `purpose` when the account holds less than `amount` of `currency` (for ETH, gas
    comes on top: the node refuses that shortfall itself)."""
    account = str(session.account.address)
    if currency.address == ETH:
        held = int(session.web3.eth.get_balance(account))
    else:
        held = int(session.read(erc20(currency.address), "balanceOf", account))
    if held < amount:
        raise InputError(
            f"insufficient funds: {purpose} needs {currency.show(amount)}, but {account} holds {currency.show(held)}"
            f"{' (and gas comes on top)' if currency.address == ETH else ''}; fund the account or use a smaller amount"
        )
