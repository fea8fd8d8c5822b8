"""Command-line options that several command groups share."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click


def _location(what: str) -> Callable[[click.Context, click.Parameter, str | None], str | Path | None]:
    """A callback taking where `what` lives: a postgresql:// URL as it is, a path made absolute,
    another URL refused (its password left out)."""

    def parse(ctx: click.Context, param: click.Parameter, value: str | None) -> str | Path | None:
        from agents.core.locations import is_postgres, redact

        if value is None or value == "":
            return None
        if is_postgres(value):
            return value
        if "://" in value:
            raise click.BadParameter(
                f"{redact(value)}: {what} or a postgresql://user:password@host:port/database URL", ctx=ctx, param=param
            )
        return Path(value).absolute()

    return parse


journal_option = click.option(
    "--journal",
    envvar="PROOFMINT_JOURNAL",
    default=None,
    callback=_location("a journal is a file path"),
    help="Where the journal lives: a SQLite file (default: journal.db in --state) or a "
    "postgresql://user:password@host:port/database URL that workers on many hosts share. Env: PROOFMINT_JOURNAL",
)
"""`--journal` of the commands that open the journal (`agent`, `up`, `request`, `review`)."""

store_option = click.option(
    "--store",
    envvar="PROOFMINT_STORE",
    default=None,
    callback=_location("a content store is a folder"),
    help="The content store: a folder (default: store in --state) or a postgresql://user:password@host:port/database "
    "URL that every host reaches, so a publisher on one host and the API on another see the same blocks (every "
    "block is checked against its CID on read). Env: PROOFMINT_STORE",
)
"""`--store` of the commands that run agents (`agent`, `up`)."""
