"""`proofmint cid` and `proofmint store …`: content addresses and the local block store."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import click

from agents.storage.cid import Cid, CidError
from agents.storage.store import LocalStore
from agents.storage.unixfs import Importer

#: Files larger than this show progress on a terminal.
PROGRESS_FROM = 64 << 20
DEFAULT_STORE = Path(".cache/store")

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def _open(path: str) -> tuple[BinaryIO, int | None]:
    if path == "-":
        return sys.stdin.buffer, None
    file = Path(path)
    if file.is_dir():
        raise click.BadParameter(f"{path} is a folder; proofmint adds single files", param_hint="FILE")
    try:
        return file.open("rb"), file.stat().st_size
    except OSError as err:
        raise click.BadParameter(f"{path}: {err.strerror}", param_hint="FILE") from None


def _add(importer_for: Callable[[Callable[[int], None] | None], Importer], stream: BinaryIO, size: int | None) -> Cid:
    """Runs an import, with a progress bar on a terminal for big files."""
    if size is None or size < PROGRESS_FROM or not sys.stderr.isatty():
        return importer_for(None).add(stream).cid
    progress_bar: Any = click.progressbar(length=size, label="hashing", file=sys.stderr)
    with progress_bar as bar:
        done = [0]

        def update(total: int) -> None:
            bar.update(total - done[0])
            done[0] = total

        return importer_for(update).add(stream).cid


def cid_version_option(default: str) -> Decorator:
    return click.option(
        "--cid-version",
        type=click.Choice(["0", "1"]),
        default=default,
        show_default=True,
        help="0: base58 Qm… with dag-pb leaves (Kubo's default); 1: base32 b… with raw leaves.",
    )


def store_option() -> Decorator:
    return click.option(
        "--store",
        "store_dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=DEFAULT_STORE,
        show_default=True,
        envvar="PROOFMINT_STORE",
        help="The local block store's folder (env PROOFMINT_STORE).",
    )


def _parse(cid: str) -> Cid:
    try:
        return Cid.parse(cid)
    except CidError as err:
        raise click.BadParameter(str(err), param_hint="CID") from None


@click.command("cid")
@cid_version_option("0")
@click.argument("file", type=str)
def cid_command(cid_version: str, file: str) -> None:
    """Print FILE's IPFS content identifier: exactly what `ipfs add -Q [--cid-version 1] FILE`
    prints with Kubo's defaults (256 KiB chunks, balanced DAG of at most 174 links). FILE may be
    `-` for standard input. Nothing is stored or sent anywhere."""
    stream, size = _open(file)
    with stream:
        root = _add(lambda progress: Importer(cid_version=int(cid_version), progress=progress), stream, size)
    click.echo(str(root))


@click.group("store")
def store_group() -> None:
    """The local content-addressed block store (IPFS-compatible blocks, CAR export)."""


@store_group.command("add")
@cid_version_option("1")
@store_option()
@click.argument("file", type=str)
def store_add(cid_version: str, store_dir: Path, file: str) -> None:
    """Add FILE's blocks to the store and print its CID (the one `proofmint cid` prints)."""
    store = LocalStore(store_dir)
    stream, size = _open(file)
    with stream:
        root = _add(
            lambda progress: Importer(cid_version=int(cid_version), emit=store.put_block, progress=progress),
            stream,
            size,
        )
    click.echo(str(root))


@store_group.command("cat")
@store_option()
@click.argument("cid", type=str)
def store_cat(store_dir: Path, cid: str) -> None:
    """Write the file CID names to standard output, every block checked against its CID."""
    LocalStore(store_dir).cat(_parse(cid), sys.stdout.buffer)


@store_group.command("export-car")
@store_option()
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="The .car file.")
@click.argument("cid", type=str)
def store_export_car(store_dir: Path, out: Path, cid: str) -> None:
    """Write CID's whole DAG as a CAR v1 file (for pinning services and `ipfs dag import`)."""
    root = _parse(cid)
    temporary = out.with_suffix(out.suffix + ".tmp")
    try:
        with temporary.open("wb") as handle:
            written = LocalStore(store_dir).export_car(root, handle)
        temporary.replace(out)
    finally:
        temporary.unlink(missing_ok=True)
    click.echo(f"{out}: {written} bytes, root {root}", err=True)
