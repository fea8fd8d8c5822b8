"""`proofmint cid` and `proofmint store …`: content addresses and the local block store.

Every failure an operator can cause (a missing, unreadable or special file, a folder where a file
belongs, a bad CID, a CID the store lacks, a store or output folder that cannot be written) ends
the command with one line on standard error, `Error: what is wrong; what to do`, and exit status
2, never a traceback. A closed pipe on standard output (`… | head`) is left to click (exit 1).
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, TextIO

import click

from agents.storage.cid import Cid, CidError
from agents.storage.store import BlockNotFoundError, CorruptBlockError, LocalStore
from agents.storage.unixfs import Emit, Importer

#: Files larger than this show progress on a terminal.
PROGRESS_FROM = 64 << 20
DEFAULT_STORE = Path(".cache/store")
#: A name longer than this is cut in error messages.
SHOWN_CHARS = 120

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]
ImporterFor = Callable[[Callable[[int], None] | None], Importer]


class CommandError(click.ClickException):
    """A one-line error (`Error: …` on standard error) with exit status 2, as click's usage errors."""

    exit_code = 2


def _shown(name: object) -> str:
    """A name the user gave, fit for a one-line message: control characters escaped, cut if long."""
    text = str(name)
    if len(text) > SHOWN_CHARS:
        text = text[: SHOWN_CHARS - 1] + "…"
    return text if text.isprintable() else repr(text)


def _os_error(doing: str, err: OSError, hint: str, *, named: tuple[object, ...] = ()) -> CommandError:
    """`doing: reason (file); hint`, the file left out when it is one of `named` (already said)."""
    said = {str(name) for name in named}
    where = f" ({_shown(err.filename)})" if err.filename and str(err.filename) not in said else ""
    return CommandError(f"{doing}: {err.strerror or err}{where}; {hint}")


def _bytes_of(stream: TextIO | None, name: str, hint: str) -> BinaryIO:
    """sys.stdin's or sys.stdout's byte stream; a one-line error where the shell closed it
    (`<&-`, `>&-`: Python then sets it to None)."""
    if stream is None:
        raise CommandError(f"{name} is closed; {hint}")
    return stream.buffer


def _open(path: str) -> tuple[BinaryIO, int | None]:
    if path == "-":
        return _bytes_of(sys.stdin, "standard input", "give FILE's path, or pipe the file in"), None
    if not path:
        raise CommandError("FILE is an empty name; give a file's path, or - for standard input")
    file = Path(path)
    if file.is_dir():
        raise CommandError(f"{_shown(path)} is a folder; proofmint adds single files (add each file in it)")
    try:
        handle = file.open("rb")
    except OSError as err:
        raise CommandError(f"cannot read {_shown(path)}: {err.strerror}; check the path and its permissions") from None
    return handle, os.fstat(handle.fileno()).st_size


def _add(file: str, stream: BinaryIO, size: int | None, importer_for: ImporterFor) -> Cid:
    """Imports FILE (opened by _open), with a progress bar on a terminal for big files. Every
    OSError met here is taken as FILE's: the importer's `emit` must report its own failures."""
    try:
        if size is None or size < PROGRESS_FROM or not sys.stderr.isatty():
            return importer_for(None).add(stream).cid
        progress_bar: Any = click.progressbar(length=size, label="hashing", file=sys.stderr)
        with progress_bar as bar:
            done = [0]

            def update(total: int) -> None:
                bar.update(total - done[0])
                done[0] = total

            return importer_for(update).add(stream).cid
    except OSError as err:
        name = "standard input" if file == "-" else _shown(file)
        raise CommandError(
            f"cannot read {name}: {err.strerror or err}; proofmint reads regular files and standard input"
        ) from None


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
        type=click.Path(path_type=Path, readable=False),  # checked by _store, in one line
        metavar="FOLDER",
        default=DEFAULT_STORE,
        show_default=True,
        envvar="PROOFMINT_STORE",
        help="The local block store's folder (env PROOFMINT_STORE).",
    )


def _store(store_dir: Path, *, create: bool) -> LocalStore:
    """The store in `store_dir`, made first if `create`; else it must exist."""
    hint = "pass --store (or set PROOFMINT_STORE to) a folder you can write"
    if store_dir.exists() and not store_dir.is_dir():
        raise CommandError(f"the store {_shown(store_dir)} is a file, not a folder; {hint}")
    store = LocalStore(store_dir)
    if create:
        try:
            store.create()
        except OSError as err:
            raise _os_error(
                f"cannot create the store folder {_shown(store_dir)}",
                err,
                hint,
                named=(store_dir, store_dir / "blocks"),
            ) from None
    elif not store_dir.is_dir():
        raise CommandError(
            f"no store at {_shown(store_dir)}; add files with `proofmint store add FILE` first, "
            "or pass --store (or set PROOFMINT_STORE to) the store's folder"
        )
    return store


def _parse(text: str) -> Cid:
    try:
        return Cid.parse(text)
    except CidError as err:
        raise CommandError(
            f"{_shown(text) or 'an empty string'} is not a CID: {err}; "
            "give one that `proofmint store add` or `proofmint cid` printed"
        ) from None


def _require(store: LocalStore, root: Cid) -> None:
    if not store.has(root):
        raise CommandError(
            f"no block {root} in the store {_shown(store.root)}; add the file with `proofmint store add FILE`, "
            "or pass --store the store that has it"
        )


def _put_into(store: LocalStore) -> Emit:
    """`store.put_block` with its failures as one-line errors (so _add's OSErrors are FILE's)."""

    def put(cid: Cid, block: bytes) -> None:
        try:
            store.put_block(cid, block)
        except OSError as err:
            raise _os_error(
                f"cannot write to the store {_shown(store.root)}",
                err,
                "free some space, or pass --store (or set PROOFMINT_STORE to) a folder you can write",
            ) from None

    return put


@contextmanager
def _reading_dag(root: Cid) -> Iterator[None]:
    """A damaged store met while a DAG is read (a block gone, changed or not UnixFS) as one line."""
    try:
        yield
    except BlockNotFoundError as err:
        raise CommandError(
            f"{err}, a block of {root}: the store holds only part of the file; add the file again "
            "with `proofmint store add FILE`"
        ) from None
    except CorruptBlockError as err:
        raise CommandError(str(err)) from None
    except CidError as err:
        raise CommandError(f"{root} is not a file in this store: {err}; check the CID") from None


@contextmanager
def _writing_stdout(root: Cid) -> Iterator[None]:
    try:
        yield
    except OSError as err:
        if err.errno == errno.EPIPE:  # the reader went away (`| head`): click exits quietly
            raise
        raise _os_error(f"cannot copy {root} to standard output", err, "check where standard output goes") from None


@click.command("cid")
@cid_version_option("0")
@click.argument("file", type=str)
def cid_command(cid_version: str, file: str) -> None:
    """Print FILE's IPFS content identifier: exactly what `ipfs add -Q FILE` prints with Kubo's
    defaults (CIDv0 Qm…, 256 KiB chunks, balanced DAG of at most 174 links). `--cid-version 1`
    prints what `ipfs add -Q --cid-version 1 FILE` and `proofmint store add FILE` print (CIDv1 b…,
    raw leaves). FILE may be `-` for standard input. Nothing is stored or sent anywhere."""
    stream, size = _open(file)
    with stream:
        root = _add(file, stream, size, lambda progress: Importer(cid_version=int(cid_version), progress=progress))
    click.echo(str(root))


@click.group("store")
def store_group() -> None:
    """The local content-addressed block store (IPFS-compatible blocks, CAR export)."""


@store_group.command("add")
@cid_version_option("1")
@store_option()
@click.argument("file", type=str)
def store_add(cid_version: str, store_dir: Path, file: str) -> None:
    """Add FILE's blocks to the store and print its CIDv1 (b…, raw leaves), the kind of CID the
    agents store and register: what `proofmint cid --cid-version 1 FILE` and `ipfs add -Q
    --cid-version 1 FILE` print. `--cid-version 0` stores Kubo's default layout and prints the Qm…
    CID of plain `proofmint cid FILE` and `ipfs add -Q FILE`. FILE may be `-` for standard input."""
    stream, size = _open(file)
    with stream:
        put = _put_into(_store(store_dir, create=True))
        root = _add(
            file, stream, size, lambda progress: Importer(cid_version=int(cid_version), emit=put, progress=progress)
        )
    click.echo(str(root))


@store_group.command("cat")
@store_option()
@click.argument("cids", metavar="CID...", nargs=-1, required=True)
def store_cat(store_dir: Path, cids: tuple[str, ...]) -> None:
    """Write the files the CIDs name to standard output, one after another (as `ipfs cat`), every
    block checked against its CID. Nothing is written unless every CID parses and the store has its
    root block; a block missing or damaged further in stops the command after what came before."""
    roots = [_parse(text) for text in cids]
    store = _store(store_dir, create=False)
    for root in roots:
        _require(store, root)
    out = _bytes_of(sys.stdout, "standard output", "redirect it to a file (> FILE)")
    for root in roots:
        with _reading_dag(root), _writing_stdout(root):
            store.cat(root, out)
            out.flush()


def _export_to_file(store: LocalStore, root: Cid, out: Path) -> int:
    """Writes the CAR to a temporary file renamed into place, so a failed export leaves no partial
    CAR behind; a device or named pipe (`/dev/null`, a FIFO) is written in place, never replaced."""
    if out.is_dir():
        raise CommandError(f"-o {_shown(out)} is a folder; give a file name, such as -o {_shown(out / f'{root}.car')}")
    if not out.parent.is_dir():
        raise CommandError(
            f"cannot write {_shown(out)}: the folder {_shown(out.parent)} does not exist; create it, "
            "or choose another -o (- for standard output)"
        )
    in_place = out.exists() and not out.is_file()
    target = out if in_place else out.with_name(f"{out.name}.{os.getpid()}.tmp")
    try:
        with target.open("wb") as handle:
            written = store.export_car(root, handle)
        if not in_place:
            target.replace(out)
    except OSError as err:
        raise _os_error(
            f"cannot write {_shown(out)}",
            err,
            "check the folder's permissions and free space, or choose another -o",
            named=(out, target),
        ) from None
    finally:
        if not in_place:
            target.unlink(missing_ok=True)
    return written


@store_group.command("export-car")
@store_option()
@click.option("-o", "--out", metavar="FILE", required=True, help="The .car file to write, or - for standard output.")
@click.argument("cid", type=str)
def store_export_car(store_dir: Path, out: str, cid: str) -> None:
    """Write CID's whole DAG as a CAR v1 file (for pinning services and `ipfs dag import`). With
    `-o -` the CAR goes to standard output and nothing else does; the summary line goes to
    standard error."""
    if not out:
        raise CommandError("-o is an empty name; give the .car file's path, or - for standard output")
    root = _parse(cid)
    store = _store(store_dir, create=False)
    _require(store, root)
    with _reading_dag(root):
        if out == "-":
            stdout = _bytes_of(sys.stdout, "standard output", "give -o a file name")
            with _writing_stdout(root):
                written = store.export_car(root, stdout)
                stdout.flush()
        else:
            written = _export_to_file(store, root, Path(out))
    shown = "standard output" if out == "-" else _shown(out)
    click.echo(f"{shown}: {written} bytes, root {root}", err=True)
