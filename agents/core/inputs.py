"""Values typed by people on the command line: amounts (`1000` base units, `0.01 ether`, `5 gwei`,
`1.5 token`) and 32-byte hex values (digests, asset ids)."""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation, localcontext
from pathlib import Path
from typing import Any

from agents.core.errors import PermanentError

UNITS = {"wei": 0, "gwei": 9, "ether": 18, "eth": 18}
_AMOUNT = re.compile(r"^\s*([0-9][0-9_]*(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*$")


class InputError(PermanentError, ValueError):
    """Not a value this parser understands; the message shows what it accepts."""


def read_json_file(path: Path, error: type[Exception]) -> Any:
    """The JSON in the file at `path` (an operator's configuration); `error` saying so when the
    file cannot be read or is no JSON."""
    try:
        return json.loads(path.read_text(encoding="utf8"))
    except (OSError, ValueError) as exc:
        raise error(f"{path}: not a readable JSON file ({exc})") from None


def parse_amount(text: str, *, decimals: int = 18) -> int:
    """Base units of `text`. A bare integer is already in base units. A unit scales it: wei, gwei,
    ether (18 decimals) or `token`, which scales by `decimals` (an ERC-20's `decimals()`).
    Fractions that do not land on a whole base unit are refused rather than rounded."""
    match = _AMOUNT.match(text)
    if not match:
        raise InputError(f"{text!r}: expected an amount such as 1000, 0.01 ether, 5 gwei or 1.5 token")
    number, unit = match.group(1).replace("_", ""), match.group(2).lower()
    if unit == "" and "." in number:
        raise InputError(f"{text!r}: a bare number is in base units and must be whole; add a unit")
    if unit == "token":
        scale = decimals
    elif unit in UNITS or unit == "":
        scale = UNITS.get(unit, 0)
    else:
        raise InputError(f"{text!r}: unknown unit {unit!r} (wei, gwei, ether, token)")
    with localcontext(prec=120):  # exact for every uint256 with up to 40 decimals
        try:
            value = Decimal(number) * (Decimal(10) ** scale)
        except InvalidOperation as exc:
            raise InputError(f"{text!r}: not a number") from exc
    if value != value.to_integral_value():
        raise InputError(f"{text!r} is not a whole number of base units (10^-{scale} {unit or 'units'})")
    result = int(value)
    if result >= 2**256:
        raise InputError(f"{text!r} does not fit in uint256")
    return result


_HEX32 = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")


def parse_bytes32(text: str, name: str) -> bytes:
    """32 bytes from 64 hex digits, with or without 0x."""
    if not _HEX32.match(text.strip()):
        raise InputError(f"{name}: expected 32 bytes as 64 hex digits (0x optional), got {text!r}")
    return bytes.fromhex(text.strip().removeprefix("0x"))
