"""`proofmint zk`: build the curation head's circuit, prove batches, verify proofs and export the
Solidity verifier.

A proof is made for named assets: each input to `prove` is an asset's content digest (sha256 of
its image bytes, its token id) with its head row (the image's CLIP embedding, then the prompt's
text embedding). The circuit reads the row and the digest's proven digest (the top 253 bits of
its keccak256, one field element); the proof's public instances carry the input commitment that
hashes both, the score, and the proven digest passed through. The head is the shipped trained
one unless `--weights` names another (or `--seed` asks for random weights, to size circuits).

Every command takes the same circuit options; the circuit is built on first use (progress on
stderr) and cached under `--cache`, so later commands start at once. Heavy modules (torch, ezkl)
are imported only when a command runs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from agents.core.errors import PermanentError
from agents.core.toolchain import project_root
from agents.models.head import HEAD_FOLDER
from zkml.shape import HeadShape

if TYPE_CHECKING:
    from zkml.pipeline import Circuit, HeadInput

DEFAULT_BATCH = 16
_SHAPE = HeadShape()


class ZkInputError(PermanentError, ValueError):
    """A file given to `proofmint zk` is missing or malformed."""


@dataclass(frozen=True)
class CircuitOptions:
    batch: int
    embed_dim: int
    hidden: int
    seed: int | None
    weights: Path | None
    cache: Path
    chain: str
    srs: Path | None
    tuning: str

    def build(self) -> Circuit:
        from zkml.curation_head import CurationHead, HeadShape, build_curation_head, export_onnx, load_weights
        from zkml.pipeline import EZKL_DEFAULTS, TUNED, Circuit
        from zkml.srs import SrsPolicy

        if self.weights is not None:
            try:
                head = CurationHead.from_state(load_weights(self.weights))
            except ValueError as exc:
                raise ZkInputError(f"{self.weights}: {exc}") from None
        else:
            head = build_curation_head(HeadShape(self.embed_dim, self.hidden), seed=self.seed or 0)
        self.cache.mkdir(parents=True, exist_ok=True)
        onnx = export_onnx(head, self.cache / f".export-{self.batch}.onnx", batch=self.batch)
        policy = SrsPolicy.for_local_chain() if self.chain == "local" else SrsPolicy.for_live_network(self.srs)
        tuning = TUNED if self.tuning == "tuned" else EZKL_DEFAULTS
        return Circuit.build(
            onnx,
            self.cache,
            batch=self.batch,
            embed_dim=self.embed_dim,
            tuning=tuning,
            srs=policy,
            progress=lambda line: click.echo(f"[zk] {line}", err=True),
        )


def _weights_shape(path: Path) -> HeadShape:
    """The shape of the head at `path`: a head folder's `head.json` says it (no torch needed);
    a weights file is read."""
    config = path / "head.json"
    try:
        if path.is_dir():
            shape = json.loads(config.read_text(encoding="utf8"))["shape"]
            return HeadShape(int(shape["embed_dim"]), int(shape["hidden"]))
        from zkml.curation_head import load_weights

        hidden, embed_dim = load_weights(path)["net.0.weight"].shape
        return HeadShape(int(embed_dim), int(hidden))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ZkInputError(f"{path}: not a curation head folder or weights file ({exc})") from None


def resolve_options(
    *,
    batch: int,
    embed_dim: int | None,
    hidden: int | None,
    seed: int | None,
    weights: Path | None,
    cache: Path,
    chain: str,
    srs: Path | None,
    tuning: str,
) -> CircuitOptions:
    """The circuit the options name: the shipped trained head by default, other trained weights
    with --weights, or a random head of --embed-dim and --hidden with --seed (for sizing circuits
    only: a proof of random weights proves nothing). --embed-dim and --hidden, when given with
    weights, must be the weights' shape."""
    if seed is not None and weights is not None:
        raise click.UsageError("--seed builds random weights: not with --weights")
    if seed is None:
        weights = weights if weights is not None else project_root() / HEAD_FOLDER
        shape = _weights_shape(weights)
        for name, given, actual in (("--embed-dim", embed_dim, shape.embed_dim), ("--hidden", hidden, shape.hidden)):
            if given is not None and given != actual:
                raise click.UsageError(f"{name} {given}, but the head at {weights} has {actual}")
    else:
        shape = HeadShape(embed_dim or _SHAPE.embed_dim, hidden or _SHAPE.hidden)
    return CircuitOptions(batch, shape.embed_dim, shape.hidden, seed, weights, cache, chain, srs, tuning)


def circuit_options(command: Callable[..., None]) -> Callable[..., None]:
    """The options every `zk` command shares, gathered into one `CircuitOptions`."""
    options = [
        click.option("--batch", type=click.IntRange(1, 256), default=DEFAULT_BATCH, show_default=True,
                     help="Inferences per proof (the attestation batch)."),
        click.option("--weights", type=click.Path(exists=True, path_type=Path),
                     help="Trained curation head: a head folder (make train-head), a .safetensors file or a torch "
                          "state_dict. Default: the shipped models/curation-head."),
        click.option("--embed-dim", type=click.IntRange(1), default=None,
                     help=f"Values in a head row (image and prompt embeddings): the weights' (with --seed: "
                          f"{_SHAPE.embed_dim})."),
        click.option("--hidden", type=click.IntRange(1), default=None,
                     help=f"Hidden layer width: the weights' (with --seed: {_SHAPE.hidden})."),
        click.option("--seed", type=int, default=None,
                     help="Random weights from this seed instead of a trained head: for sizing circuits only."),
        click.option("--cache", type=click.Path(file_okay=False, path_type=Path), default=Path(".cache/zkml"),
                     show_default=True, help="Artifact cache (keys are hundreds of MB)."),
        click.option("--chain", type=click.Choice(["local", "live"]), default="local", show_default=True,
                     help="local: embedded chain or anvil (SRS generated here). live: any other network."),
        click.option("--srs", type=click.Path(dir_okay=False, path_type=Path),
                     help="Public-ceremony SRS file (required with --chain live; its sha256 must match the pin)."),
        click.option("--tuning", type=click.Choice(["tuned", "ezkl-defaults"]), default="tuned", show_default=True,
                     help="The project's tuned settings, or ezkl's defaults (the benchmark baseline)."),
    ]  # fmt: skip

    @wraps(command)
    def wrapper(**kwargs: Any) -> None:
        names = ("batch", "embed_dim", "hidden", "seed", "weights", "cache", "chain", "srs", "tuning")
        circuit = resolve_options(**{name: kwargs.pop(name) for name in names})
        command(circuit, **kwargs)

    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper


def _load_inputs(path: Path, batch: int, embed_dim: int) -> list[HeadInput]:
    """The rows of `zk prove`: a JSON list of `batch` objects, each {"sha256": the asset's content
    digest (64 hex digits, 0x optional), "embedding": `embed_dim` numbers}."""
    from zkml.pipeline import HeadInput

    expected = (
        f'{path}: expected a JSON list of {batch} objects {{"sha256": 64 hex digits, '
        f'"embedding": a list of {embed_dim} numbers}}'
    )
    try:
        rows = json.loads(path.read_text(encoding="utf8"))
    except (OSError, ValueError) as exc:
        raise ZkInputError(f"{path}: not a JSON file ({exc})") from exc
    if not isinstance(rows, list) or len(rows) != batch:
        raise ZkInputError(expected)
    inputs: list[HeadInput] = []
    for row in rows:
        if not isinstance(row, dict) or set(row) != {"sha256", "embedding"}:
            raise ZkInputError(expected)
        embedding, digest = row["embedding"], row["sha256"]
        numbers = isinstance(embedding, list) and all(
            isinstance(x, (int, float)) and not isinstance(x, bool) for x in embedding
        )
        if not numbers or len(embedding) != embed_dim or not isinstance(digest, str):
            raise ZkInputError(expected)
        try:
            raw = bytes.fromhex(digest.removeprefix("0x"))
        except ValueError as exc:
            raise ZkInputError(expected) from exc
        if len(raw) != 32:
            raise ZkInputError(expected)
        inputs.append(HeadInput([float(x) for x in embedding], raw))
    return inputs


@click.group("zk")
def zk() -> None:
    """Zero-knowledge proofs of the curation head (EZKL): setup, prove, verify, export-verifier."""


@zk.command()
@circuit_options
def setup(circuit: CircuitOptions) -> None:
    """Build the circuit and its keys (minutes the first time; cached afterwards)."""
    built = circuit.build()
    click.echo(f"circuit   {built.artifacts.root}")
    click.echo(f"logrows   {built.logrows}")
    click.echo(f"batch     {built.batch} inferences per proof")


@zk.command()
@circuit_options
@click.argument("inputs", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("proof"), show_default=True,
              help="Folder for input, witness, proof.json and calldata.json.")  # fmt: skip
def prove(circuit: CircuitOptions, inputs: Path, out: Path) -> None:
    """Prove one batch for --batch assets. INPUTS is a JSON list of --batch objects
    {"sha256": "<sha256 of the asset's image bytes, 64 hex digits>", "embedding": [--embed-dim numbers]}
    (the head row: the image's CLIP embedding, then the prompt's text embedding);
    the proof names each asset by that digest's proven digest (top 253 bits of its keccak256)."""
    rows = _load_inputs(inputs, circuit.batch, circuit.embed_dim)
    built = circuit.build()
    click.echo(f"[zk] proving {built.batch} inferences ...", err=True)
    proof = built.prove(rows, out)
    calldata = built.calldata(proof)
    digests = ["0x" + row.digest.hex() for row in rows]
    commitments = ["0x" + c.to_bytes(32, "big").hex() for c in calldata.commitments]
    scores = calldata.scores
    output_scale = int(built.settings()["model_output_scales"][0])
    record = {
        "proof": "0x" + calldata.proof.hex(),
        "instances": [str(v) for v in calldata.instances],
        "digests": digests,
        "proven_digests": ["0x" + d.to_bytes(32, "big").hex() for d in calldata.proven_digests],
        "commitments": commitments,
        "scores": scores,
        "output_scale": output_scale,
    }
    (out / "calldata.json").write_text(json.dumps(record, indent=2), encoding="utf8")
    click.echo(f"proof     {out / 'proof.json'}")
    click.echo(
        f"calldata  {out / 'calldata.json'} (attestInference(modelId, seqs, proof, instances): "
        "seqs = the assets' registration numbers, getAsset(digest).seq, in this order)"
    )
    for digest, commitment, score in zip(digests, commitments, scores, strict=True):
        click.echo(f"  asset {digest}  commitment {commitment}  score {score / 2.0**output_scale:+.4f}")


def _proof_batch(path: Path) -> int:
    """The batch a proof file is of, read from the proof itself: an ezkl proof of the curation
    head carries `INSTANCES_PER_ASSET` public instances per asset. Anything else is no proof."""
    from zkml.evm import INSTANCES_PER_ASSET

    what = f"{path}: not an ezkl proof of the curation head"
    try:
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ZkInputError(f"{what} (not a JSON file: {exc})") from exc
    if not isinstance(doc, dict) or "proof" not in doc or "instances" not in doc:
        raise ZkInputError(f'{what} (expected a JSON object with "proof" and "instances", as zk prove writes)')
    instances = doc["instances"]
    if not isinstance(instances, list) or len(instances) != 1 or not isinstance(instances[0], list):
        raise ZkInputError(f"{what} (instances: expected one list of field elements)")
    count = len(instances[0])
    if count == 0 or count % INSTANCES_PER_ASSET or not all(isinstance(felt, str) for felt in instances[0]):
        raise ZkInputError(
            f"{what} ({count} public instances; a proof of n assets has {INSTANCES_PER_ASSET}n field elements)"
        )
    return count // INSTANCES_PER_ASSET


@zk.command()
@circuit_options
@click.argument("proof", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def verify(circuit: CircuitOptions, proof: Path) -> None:
    """Verify PROOF (an ezkl proof.json) with ezkl; exit 1 when it does not verify. The batch is
    the proof's own (its number of public instances); the other circuit options must be those it
    was proved with. A file that is no proof is an error (exit 2), not INVALID."""
    batch = _proof_batch(proof)
    source = click.get_current_context().get_parameter_source("batch")
    given = source not in (None, click.core.ParameterSource.DEFAULT)
    if given and circuit.batch != batch:
        raise ZkInputError(f"{proof}: a proof of {batch} inferences, not --batch {circuit.batch} (leave --batch out)")
    circuit = replace(circuit, batch=batch)
    click.echo(f"[zk] a proof of {batch} inferences: the circuit of batch {batch}", err=True)
    built = circuit.build()
    if not built.verify(proof):
        click.echo(f"INVALID  {proof}")
        raise SystemExit(1)
    click.echo(f"valid    {proof}")


def _bands(weights: Path | None) -> tuple[int, int] | None:
    """The fixed-point (accept_at, review_at) of a head folder, which a model version binds with its
    verifier; None for bare weights or random ones."""
    from agents.models.head import HeadError, HeadModel

    if weights is None or not weights.is_dir():
        return None
    try:
        head = HeadModel.load(weights)
    except HeadError as exc:
        raise ZkInputError(str(exc)) from None
    return head.accept_fixed, head.review_fixed


@zk.command("export-verifier")
@circuit_options
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("verifier"), show_default=True,
              help="Folder for Verifier.sol and verifier.json (abi, bytecode, vk digest).")  # fmt: skip
def export_verifier(circuit: CircuitOptions, out: Path) -> None:
    """Render the Solidity verifier and compile it with the project's solc."""
    from agents.core.toolchain import project_root, solc_executable

    built = circuit.build()
    compiled = built.verifier(
        solc_executable(project_root()), progress=lambda line: click.echo(f"[zk] {line}", err=True)
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "Verifier.sol").write_text(compiled.source.read_text(encoding="utf8"), encoding="utf8")
    record = {
        "abi": compiled.abi,
        "bytecode": "0x" + compiled.bytecode.hex(),
        "vkDigest": "0x" + compiled.vk_digest.hex(),
        "runtimeSize": compiled.runtime_size,
        "chain": circuit.chain,
    }
    bands = _bands(circuit.weights)
    if bands is not None:
        record["acceptAt"], record["reviewAt"] = bands
    (out / "verifier.json").write_text(json.dumps(record, indent=2), encoding="utf8")
    click.echo(f"verifier  {out / 'Verifier.sol'} ({compiled.runtime_size:,} bytes of runtime code)")
    if bands is not None:
        click.echo(
            f"bind      ModelRegistry.bindVerifier(modelId, <deployed verifier>, {record['vkDigest']}, "
            f"{bands[0]}, {bands[1]})  (the head's bands in its fixed point: accept >= {bands[0]}, reject < {bands[1]})"
        )
    else:
        click.echo(f"vkDigest  {record['vkDigest']}  (pass to ModelRegistry.bindVerifier with the head's bands)")
    if circuit.chain == "local":
        click.echo("warning   made with a generated SRS: deploy it on local development chains only", err=True)
