"""Where a journal or a store lives: a filesystem path, or a `postgresql://` URL that many
processes on many hosts share. Both the journal (agents.runtime.journal_db) and the block store
(agents.storage.pgstore) read locations this way."""

from __future__ import annotations

from pathlib import Path
from typing import Final
from urllib.parse import urlsplit, urlunsplit

POSTGRES_SCHEMES: Final = ("postgresql", "postgres")


def is_postgres(location: str | Path) -> bool:
    return isinstance(location, str) and urlsplit(location).scheme in POSTGRES_SCHEMES


def redact(location: str | Path) -> str:
    """The location without its password, for logs and messages."""
    if not isinstance(location, str) or "://" not in location:
        return str(location)
    parts = urlsplit(location)
    if parts.password is None:
        return str(location)
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
