"""Register a derivative of assets you hold licences for:
`ape run register_asset --file IMAGE --parents 0xDIGEST[,...] --licenses ID[,...] [options]`.

The record is the one the API (`POST /v1/derivatives`) drafts for the dApp, built by
`agents.storage.derivative.Derivative`: the image's sha256 is the asset id, its parameters
document (whose sha256 is `paramsDigest`) and its ERC-721 metadata go to the local content
store, and the metadata's `ipfs://` URI is the token URI. The rules are the contract's own:

1. Read the inputs: the image, one licence per parent (comma-separated or repeated options, the
   same order), the model version (`--model-id`, or the first parent's, read on chain). The
   creator is the account.
2. Simulate `ProvenanceRegistry.register(input, licenseIds)` from the account: a licence the
   account does not hold, one of another asset, terms that allow no derivatives, bytes already
   registered or a model that is not active each end the command with the custom error by name,
   before anything is sent or stored. `--dry-run` stops here and prints what would be registered.
3. Confirm on a live network (unless `--yes`), store the image, the parameters document and the
   metadata in `--store`, then send `register`.
4. Print the parents with their royalty shares as the chain recorded them (`parentsOf`).

Every mistake (a missing file, a malformed digest or licence id, a licence count that does not
match the parents) is one line on stderr with exit status 1.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import ape
import click

from agents.core.errors import PermanentError
from agents.core.inputs import InputError, parse_bytes32
from agents.core.reverts import WouldRevertError
from agents.deploy.operator import Session, cli_errors, confirm_broadcast, open_session
from agents.storage.derivative import Derivative, StoredDerivative
from agents.storage.store import LocalStore
from scripts._cli import OperatorCommand

DEFAULT_STORE = Path(".cache/store")
"""As `proofmint store` (agents/app/store_cli.py): relative to the folder the command runs in."""
STORE_HINT = "pass --store (or set PROOFMINT_STORE to) a folder you can write"


def split_items(values: tuple[str, ...], option: str) -> list[str]:
    """The items of a list option given comma-separated, repeated, or both."""
    items: list[str] = []
    for value in values:
        for item in value.split(","):
            if not item.strip():
                raise InputError(f"{option}: an empty item in {value!r}; separate the items with single commas")
            items.append(item.strip())
    return items


def parse_license_id(text: str, option: str = "--licenses") -> int:
    """A licence token id: decimal (as `ape run license buy` prints it) or 0x hex."""
    try:
        value = int(text, 16) if text[:2].lower() == "0x" else int(text) if text.isascii() and text.isdecimal() else 0
    except ValueError:  # 0x and no hex digits after it
        value = 0
    if not 0 < value < 2**256:
        raise InputError(
            f"{option}: expected a licence token id (decimal, as `ape run license buy` prints it, or 0x hex), "
            f"got {text!r}"
        )
    return value


def pair_parents(parents: list[str], licenses: list[str]) -> list[tuple[bytes, int]]:
    """(parent, licence) pairs in the ascending parent order the contract requires."""
    if len(parents) != len(licenses):
        raise InputError(
            f"--parents and --licenses: one licence per parent, in the same order; got {len(parents)} "
            f"parent{'s' if len(parents) != 1 else ''} and {len(licenses)} licence{'s' if len(licenses) != 1 else ''}"
        )
    pairs = []
    for i, (parent, licence) in enumerate(zip(parents, licenses, strict=True), start=1):
        digest = parse_bytes32(parent, f"--parents item {i}")
        if digest == bytes(32):
            raise InputError(f"--parents item {i}: the zero digest is no asset; give the parent's content digest")
        pairs.append((digest, parse_license_id(licence, f"--licenses item {i}")))
    return sorted(pairs)


def read_image(path: str) -> bytes:
    """The image's bytes; a one-line PermanentError for a file that is missing or unreadable."""
    file = Path(path)
    if file.is_dir():
        raise PermanentError(f"--file {path}: a folder; give the image file")
    try:
        return file.read_bytes()
    except OSError as exc:
        raise PermanentError(f"--file {path}: {exc.strerror or exc}; check the path and its permissions") from exc


def check_store(folder: Path) -> None:
    """Refuse, before anything is simulated or sent, a store folder that cannot be written."""
    if folder.exists() and not folder.is_dir():
        raise PermanentError(f"the store {folder} is a file, not a folder; {STORE_HINT}")
    existing = next(p for p in (folder, *folder.absolute().parents) if p.exists())
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PermanentError(f"cannot write the store {folder} ({existing} is not writable); {STORE_HINT}")


def store_files(derivative: Derivative, folder: Path) -> None:
    store = LocalStore(folder)
    try:
        store.create()
        asyncio.run(derivative.store(store))
    except OSError as exc:
        raise PermanentError(f"cannot write the store {folder}: {exc.strerror or exc}; {STORE_HINT}") from exc


def model_of(session: Session, parent: bytes) -> int:
    """The model version of a registered asset (its record's `modelId`)."""
    try:
        record = session.read(session.core.provenance, "getAsset", "0x" + parent.hex())
    except WouldRevertError as exc:
        raise PermanentError(
            f"cannot read the first parent's model version (check the digest, or give --model-id): {exc}"
        ) from exc
    return int(record.modelId)


@click.command(cls=OperatorCommand)
@click.option("--file", "image_path", required=True, metavar="IMAGE", help="The derivative's image file")
@click.option(
    "--parents",
    "--parent",
    "parents",
    multiple=True,
    required=True,
    metavar="0xDIGEST[,...]",
    help="Parent asset ids (content digests), comma-separated or repeated, at most 16; any order "
    "(registered ascending, each with its licence)",
)
@click.option(
    "--licenses",
    "--license",
    "licenses",
    multiple=True,
    required=True,
    metavar="ID[,...]",
    help="The licence token id held for each parent, in the same order as --parents",
)
@click.option(
    "--model-id",
    type=click.IntRange(min=1, max=2**32 - 1),
    default=None,
    help="Model version that made it (default: the first parent's)",
)
@click.option("--title", default="", help="The metadata's name (default: 'Derivative of 0x…')")
@click.option(
    "--store",
    "store_dir",
    type=click.Path(path_type=Path),
    metavar="FOLDER",
    default=DEFAULT_STORE,
    show_default=True,
    envvar="PROOFMINT_STORE",
    help="The local content store the image, parameters and metadata go to (env PROOFMINT_STORE)",
)
@click.option("--dry-run", is_flag=True, help="Simulate and print what would be registered; send and store nothing")
@click.option("--account", "account_alias", default=None, help="The creator: ape account alias, or test:N")
@click.option("--yes", is_flag=True, help="Broadcast on a live network without asking")
def cli(  # type: ignore[no-untyped-def]
    network,
    provider,
    image_path,
    parents,
    licenses,
    model_id,
    title,
    store_dir,
    dry_run,
    account_alias,
    yes,
):
    """Register a derivative of assets you hold licences for, as its creator."""
    with cli_errors():
        pairs = pair_parents(split_items(parents, "--parents"), split_items(licenses, "--licenses"))
        image = read_image(image_path)
        if not dry_run:
            check_store(store_dir)
        session = open_session(ape, network, provider, account_alias)
        registry = session.core.provenance
        click.echo(f"network   {session.target.choice} ({session.origin})")
        click.echo(f"creator   {session.account.address}")
        chosen = "--model-id" if model_id is not None else "the first parent's"
        model = model_id if model_id is not None else model_of(session, pairs[0][0])
        derivative = Derivative(
            image=image,
            creator=str(session.account.address),
            model_id=model,
            parents=tuple(parent for parent, _ in pairs),
            license_ids=tuple(licence for _, licence in pairs),
            title=title,
        )
        cids = derivative.cids()
        asset_input = derivative.asset_input(cids.metadata)
        licence_ids = list(derivative.license_ids)
        show_draft(derivative, cids, model, chosen)
        try:
            session.simulate(registry, "register", asset_input, licence_ids)
        except WouldRevertError as exc:
            detail = str(exc).removeprefix("would revert: ")
            refused = f"the registry would refuse this derivative: {detail}; nothing sent or stored"
            raise PermanentError(refused) from exc
        if dry_run:
            click.echo("dry run   register would succeed; nothing sent or stored")
            return
        count = len(pairs)
        action = f"Register 0x{derivative.digest.hex()} as a derivative of {count} parent{'s' if count > 1 else ''}"
        confirm_broadcast(session.target, yes, action)  # before storing: a "no" leaves nothing behind
        store_files(derivative, store_dir)
        click.echo(f"stored    image, parameters and metadata in {store_dir}")
        receipt = session.transact(registry, "register", asset_input, licence_ids, yes=True, action=action)
        click.echo(f"tx        {receipt.txn_hash} (gas {receipt.gas_used:,})")
        recorded, shares = session.read(registry, "parentsOf", "0x" + derivative.digest.hex())
        for parent, share in zip(recorded, shares, strict=True):
            bps = int(share)
            revenue = f"{bps} bps ({bps / 100:g}%) of the derivative's revenue"
            click.echo(f"royalty   parent 0x{bytes(parent).hex()}: {revenue}")


def show_draft(derivative: Derivative, cids: StoredDerivative, model: int, chosen: str) -> None:
    """What is about to be registered."""
    digest = derivative.digest
    click.echo(f"asset     0x{digest.hex()} (token id {int.from_bytes(digest, 'big')})")
    click.echo(f"model     {model} ({chosen})")
    for parent, licence in zip(derivative.parents, derivative.license_ids, strict=True):
        click.echo(f"parent    0x{parent.hex()} under licence {licence}")
    click.echo(f"image     {cids.image}")
    click.echo(f"params    {cids.params} (paramsDigest 0x{derivative.params_digest.hex()})")
    click.echo(f"metadata  {cids.metadata} (tokenURI ipfs://{cids.metadata})")
