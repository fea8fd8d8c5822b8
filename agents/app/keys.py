"""A private key read from an environment variable (never the command line), checked at once."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import click


def key_from_env(key_env: str, whose: str) -> str:
    """The private key in `$key_env`; `click.UsageError` naming the variable when it is unset or
    is no key. `whose`: the key's owner as the error says it ("payer", "reviewer")."""
    from eth_account import Account

    key = os.environ.get(key_env, "").strip()
    if not key:
        raise click.UsageError(f"set ${key_env} to the {whose}'s private key (0x and 64 hex digits)")
    try:
        Account.from_key(key)
    except (ValueError, TypeError):
        raise click.UsageError(f"${key_env} is not a private key (0x and 64 hex digits)") from None
    return key


def hex32_option(what: str, param_hint: str | None = None) -> Callable[[Any, Any, str], bytes]:
    """A click callback turning 64 hex digits (0x optional) into 32 bytes, or a BadParameter saying
    `what` it should be (`agents.core.inputs.parse_bytes32` does the parsing)."""
    from agents.core.inputs import InputError, parse_bytes32

    def parse(ctx: Any, param: Any, value: str) -> bytes:
        try:
            return parse_bytes32(value, what)
        except InputError:
            raise click.BadParameter(f"{value!r} is not {what} (0x and 64 hex digits)", param_hint=param_hint) from None

    return parse
