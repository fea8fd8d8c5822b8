"""Command-line options that several command groups share."""

from __future__ import annotations

from pathlib import Path

import click


def _journal(ctx: click.Context, param: click.Parameter, value: str | None) -> str | Path | None:
    from agents.core.locations import is_postgres, redact

    if value is None or value == "":
        return None
    if is_postgres(value):
        return value
    if "://" in value:
        raise click.BadParameter(
            f"{redact(value)}: a journal is a file path or a postgresql://user:password@host:port/database URL",
            ctx=ctx,
            param=param,
        )
    return Path(value).absolute()


journal_option = click.option(
    "--journal",
    envvar="PROOFMINT_JOURNAL",
    default=None,
    callback=_journal,
    help="Where the journal lives: a SQLite file (default: journal.db in --state) or a "
    "postgresql://user:password@host:port/database URL that workers on many hosts share. Env: PROOFMINT_JOURNAL",
)
"""`--journal` of the commands that open the journal (`agent`, `up`, `request`, `review`)."""


def _store(ctx: click.Context, param: click.Parameter, value: str | None) -> str | Path | None:
    from agents.core.locations import is_postgres, redact

    if value is None or value == "":
        return None
    if is_postgres(value):
        return value
    if "://" in value:
        raise click.BadParameter(
            f"{redact(value)}: a content store is a folder or a postgresql://user:password@host:port/database URL",
            ctx=ctx,
            param=param,
        )
    return Path(value).absolute()


store_option = click.option(
    "--store",
    envvar="PROOFMINT_STORE",
    default=None,
    callback=_store,
    help="The content store: a folder (default: store in --state) or a postgresql://user:password@host:port/database "
    "URL that every host reaches, so a publisher on one host and the API on another see the same blocks (every "
    "block is checked against its CID on read). Env: PROOFMINT_STORE",
)
"""`--store` of the commands that run agents (`agent`, `up`)."""
