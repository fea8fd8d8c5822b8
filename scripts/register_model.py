"""Register a model version: `ape run register_model --weights PATH --metadata-uri URI [options]`.

The weights digest is computed from the file or folder given (or passed with --weights-digest).
Training-data originators come from a CSV of `address,weight` lines (weights in parts per million
of the data share, adding up to 1,000,000); their Merkle root goes on chain, and the whole tree
with every originator's proof is written beside the CSV (`<csv>.tree.json`) so each can claim.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import ape
import click
from eth_utils.address import is_address, to_checksum_address

from agents.core.digests import weights_digest
from agents.core.errors import PermanentError
from agents.core.inputs import parse_bytes32
from agents.core.merkle import DataTree, MerkleError
from agents.deploy.operator import cli_errors, open_session
from scripts._cli import OperatorCommand

ZERO32 = b"\x00" * 32


def read_shares(path: Path) -> list[tuple[str, int]]:
    """The `address,weight` lines of a CSV (a header line and `#` comments are skipped); a line
    that is not one, or a file that is not UTF-8 text, is a PermanentError naming the place."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # a spreadsheet's byte-order mark is not part of the header
    except UnicodeDecodeError as exc:
        raise PermanentError(
            f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}): "
            "save it as a UTF-8 CSV of `address,weight` lines"
        ) from exc
    except OSError as exc:
        raise PermanentError(f"{path}: {exc.strerror or exc}") from exc
    shares: list[tuple[str, int]] = []
    for number, row in enumerate(csv.reader(io.StringIO(text, newline="")), start=1):
        if not row or row[0].strip().startswith("#") or row[0].strip().lower() == "address":
            continue
        if len(row) != 2 or not row[1].strip().isdigit():
            raise PermanentError(f"{path}:{number}: expected `address,weight` with a whole weight")
        address = row[0].strip()
        if not is_address(address) or int(address, 16) == 0:
            raise PermanentError(
                f"{path}:{number}: {address!r} is not an originator's address (0x and 40 hex digits, not zero)"
            )
        shares.append((to_checksum_address(address), int(row[1])))
    return shares


@click.command(cls=OperatorCommand)
@click.option("--weights", type=click.Path(exists=True, path_type=Path), help="Weights file or checkpoint folder")
@click.option("--weights-digest", help="The weights digest, 0x + 64 hex (instead of --weights)")
@click.option("--params-commitment", help="zk parameter commitment, 0x + 64 hex (default: none yet)")
@click.option("--metadata-uri", required=True, help="Model card URI (ipfs://...), at most 256 bytes")
@click.option(
    "--developer-bps", type=click.IntRange(0, 5000), default=1000, show_default=True, help="Developer's share"
)
@click.option("--data-bps", type=click.IntRange(0, 5000), default=0, show_default=True, help="Data originators' share")
@click.option("--data-shares", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="CSV address,weight")
@click.option("--predecessor", type=click.IntRange(min=0), default=0, help="Model id this version succeeds")
@click.option("--account", "account_alias", default=None, help="ape account alias, or test:N on development chains")
@click.option("--yes", is_flag=True, help="Broadcast on a live network without asking")
def cli(  # type: ignore[no-untyped-def]
    network,
    provider,
    weights,
    weights_digest,
    params_commitment,
    metadata_uri,
    developer_bps,
    data_bps,
    data_shares,
    predecessor,
    account_alias,
    yes,
):
    """Register a model version in ModelRegistry and print its id."""
    with cli_errors():
        if (weights is None) == (weights_digest is None):
            raise click.UsageError("give exactly one of --weights and --weights-digest")
        if (data_shares is None) != (data_bps == 0):
            raise click.UsageError("--data-shares and a non-zero --data-bps go together")
        digest = (
            weights_digest_of(weights) if weights is not None else parse_bytes32(weights_digest, "--weights-digest")
        )
        tree = None
        if data_shares is not None:
            try:
                tree = DataTree(read_shares(data_shares))
            except MerkleError as exc:
                raise PermanentError(f"{data_shares}: {exc}") from exc
        session = open_session(ape, network, provider, account_alias)
        models = session.core.models
        model_input = {
            "weightsDigest": digest,
            "paramsCommitment": parse_bytes32(params_commitment, "--params-commitment")
            if params_commitment
            else ZERO32,
            "dataRoot": tree.root if tree else ZERO32,
            "predecessor": predecessor,
            "developerBps": developer_bps,
            "dataBps": data_bps,
            "metadataURI": metadata_uri,
        }
        click.echo(f"network   {session.target.choice} ({session.origin})")
        click.echo(f"developer {session.account.address}")
        click.echo(f"weights   0x{digest.hex()}")
        if tree is not None:
            click.echo(f"data root 0x{tree.root.hex()} ({len(tree.shares)} originators)")
        model_id = int.from_bytes(session.simulate(models, "registerModel", model_input)[:32], "big")
        action = f"Register model version {model_id}"
        receipt = session.transact(models, "registerModel", model_input, yes=yes, action=action)
        click.echo(f"model id  {model_id} (gas {receipt.gas_used:,}, tx {receipt.txn_hash})")
        if tree is not None and data_shares is not None:
            out = data_shares.with_name(data_shares.name + ".tree.json")
            write_tree(out, tree, model_id, session.target.chain_id)
            click.echo(f"proofs    {out}")


def write_tree(out: Path, tree: DataTree, model_id: int, chain_id: int) -> None:
    """Every originator's weight and proof, for `RoyaltySplitter.claimDataShare`."""
    originators = {addr: {"weight": w, "proof": ["0x" + p.hex() for p in tree.proof(addr)]} for addr, w in tree.shares}
    payload = {"modelId": model_id, "chainId": chain_id, "root": "0x" + tree.root.hex(), "originators": originators}
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf8")
    tmp.replace(out)


def weights_digest_of(path: Path) -> bytes:
    try:
        return weights_digest(path)
    except (OSError, ValueError) as exc:
        raise PermanentError(str(exc)) from exc
