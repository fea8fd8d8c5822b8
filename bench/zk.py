"""zk benchmark: `python bench/zk.py [--batch K] [--head FOLDER]` (or `make bench-zk`): the
shipped trained curation head (its 64-value row: image and prompt embeddings) unless --head names
another.

One run, side by side:
- baseline: one proof per inference with ezkl's default settings (`zkml.pipeline.EZKL_DEFAULTS`;
  the pins, which are not negotiable, still apply: hashed input, fixed parameters, public output,
  safe checks, inputs and outputs taken as field elements);
- tuned: the project's tuning (one inner column, a range-check table sized to the circuit) and K
  inferences per proof.

For each: cold setup time (a fresh cache), proving time (witness + proof, in a child process whose
peak RSS is read from the kernel), inferences per minute, and on the embedded chain the gas of
`ProvenanceRegistry.attestInference` per attested inference (verifier call, one input-binding
check per asset, attestation records, event) beside the bare verifier call. Each inference is of
a random head row (two random unit vectors) and a random content digest, whose proven digest (top
253 bits of its keccak256) the proof carries; the assets are registered one after another (so 8
share an attestation storage word) and attested by registration number. Setup is then repeated on
the warm cache (`setup_cached_s`). The last line is one JSON object.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agents.core.toolchain import solc_executable  # noqa: E402
from agents.models.head import HEAD_FOLDER, HeadModel  # noqa: E402
from zkml.curation_head import CurationHead, export_onnx, load_weights  # noqa: E402
from zkml.evm import CompiledVerifier, deploy_verifier  # noqa: E402
from zkml.pipeline import EZKL_DEFAULTS, TUNED, Circuit, HeadInput, Tuning  # noqa: E402

URI = "ipfs://bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"

_WORKER = """
import json, sys, time
sys.path.insert(0, {root!r})
from pathlib import Path
from zkml.pipeline import Artifacts, Circuit, HeadInput
circuit = Circuit(Artifacts(Path({artifacts!r})), {batch}, {embed_dim})
rows = [HeadInput(r["embedding"], bytes.fromhex(r["sha256"])) for r in json.loads(Path({inputs!r}).read_text())]
started = time.monotonic()
circuit.prove(rows, Path({work!r}))
print(json.dumps({{"prove_s": time.monotonic() - started}}))
"""


@dataclass
class Side:
    name: str
    batch: int
    circuit: Circuit
    setup_s: float
    prove_s: list[float]
    peak_rss_mb: float
    proofs: list[dict[str, Any]]
    rows: list[list[HeadInput]]
    """The inputs of each proof, in order (a proof carries proven digests, not the digests)."""
    verifier: CompiledVerifier
    logrows: int

    @property
    def per_min(self) -> float:
        return 60.0 * self.batch / (sum(self.prove_s) / len(self.prove_s))


def _unit(rng: random.Random, dim: int) -> list[float]:
    vector = [rng.gauss(0.0, 1.0) for _ in range(dim)]
    norm = sum(v * v for v in vector) ** 0.5
    return [v / norm for v in vector]


def head_inputs(rng: random.Random, count: int, dim: int) -> list[HeadInput]:
    """`count` random head rows (two random unit vectors of `dim` / 2 values: an image and a
    prompt embedding, as the curator makes them), each with a random content digest."""
    return [HeadInput(_unit(rng, dim // 2) + _unit(rng, dim - dim // 2), rng.randbytes(32)) for _ in range(count)]


def prove_in_child(circuit: Circuit, rows: list[HeadInput], work: Path) -> tuple[float, float]:
    """Prove in a fresh process: (seconds, peak RSS in MB of that process)."""
    work.mkdir(parents=True, exist_ok=True)
    inputs = work / "rows.json"
    inputs.write_text(json.dumps([{"embedding": list(r.embedding), "sha256": r.digest.hex()} for r in rows]))
    code = _WORKER.format(
        root=str(ROOT),
        artifacts=str(circuit.artifacts.root),
        batch=circuit.batch,
        embed_dim=circuit.embed_dim,
        inputs=str(inputs),
        work=str(work),
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert child.stdout is not None
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"the proving child failed (exit {child.returncode})")
    prove_s = float(json.loads(output.decode().strip().splitlines()[-1])["prove_s"])
    return prove_s, usage.ru_maxrss / 1024.0


def measure(
    name: str, head: CurationHead, batch: int, tuning: Tuning, proofs: int, cache: Path, rng: random.Random
) -> Side:
    shape = head.shape
    onnx = export_onnx(head, cache / f"{name}.onnx", batch=batch)
    click.echo(f"[{name}] setup (cold cache) ...", err=True)
    started = time.monotonic()
    circuit = Circuit.build(
        onnx,
        cache,
        batch=batch,
        embed_dim=shape.embed_dim,
        tuning=tuning,
        progress=lambda line: click.echo(f"[{name}]   {line}", err=True),
    )
    setup_s = time.monotonic() - started
    verifier = circuit.verifier(solc_executable(ROOT))
    times: list[float] = []
    peak = 0.0
    made: list[dict[str, Any]] = []
    inputs: list[list[HeadInput]] = []
    for index in range(proofs):
        rows = head_inputs(rng, batch, shape.embed_dim)
        inputs.append(rows)
        work = cache / f"{name}-proof-{index}"
        seconds, rss = prove_in_child(circuit, rows, work)
        click.echo(f"[{name}]   proof {index + 1}/{proofs}: {seconds:.1f} s, peak RSS {rss:,.0f} MB", err=True)
        times.append(seconds)
        peak = max(peak, rss)
        made.append(json.loads((work / "proof.json").read_text()))
    return Side(name, batch, circuit, setup_s, times, peak, made, inputs, verifier, circuit.logrows)


def chain_gas(sides: list[Side], bands: tuple[int, int]) -> dict[str, dict[str, float]]:
    """Gas on the embedded chain: bare verifier call and attestInference, per inference."""
    from ape import accounts, chain, networks, project
    from ape.logging import logger

    from agents.core.merkle import AssetRecord
    from agents.deploy.deployment import CoreConfig, deploy_core

    logger.set_level("ERROR")
    results: dict[str, dict[str, float]] = {}
    with networks.parse_network_choice("ethereum:local:test"):
        deployer, developer, creator = accounts.test_accounts[0], accounts.test_accounts[1], accounts.test_accounts[3]
        deployed = {d.name: d.address for d in deploy_core(project, deployer, chain, CoreConfig())}
        models = project.ModelRegistry.at(deployed["ModelRegistry"])
        provenance = project.ProvenanceRegistry.at(deployed["ProvenanceRegistry"])
        rng = random.Random(99)
        models.registerModel((rng.randbytes(32), rng.randbytes(32), b"\0" * 32, 0, 1_000, 0, URI), sender=developer)
        generator = int(models.modelCount())
        for side in sides:
            models.registerModel((rng.randbytes(32), rng.randbytes(32), b"\0" * 32, 0, 0, 0, URI), sender=developer)
            head_id = int(models.modelCount())
            verifier = deploy_verifier(deployer, side.verifier)
            models.bindVerifier(head_id, verifier, side.verifier.vk_digest, *bands, sender=developer)
            calldata = side.circuit.calldata(side.proofs[0])
            digests = [row.digest for row in side.rows[0]]
            if not calldata.names(digests):
                raise SystemExit(f"[{side.name}] the proof does not carry its inputs' proven digests")
            click.echo(f"[{side.name}] registering {side.batch} assets ...", err=True)
            for digest, commitment in zip(digests, calldata.commitments, strict=True):
                record = AssetRecord(
                    content_digest=digest,
                    creator=str(creator.address),
                    model_id=generator,
                    params_digest=rng.randbytes(32),
                    input_commitment=commitment.to_bytes(32, "big"),
                    parents=(),
                    metadata_uri=URI,
                )
                provenance.register(record.as_tuple(), [], sender=creator)
            seqs = [int(provenance.getAsset(digest).seq) for digest in digests]
            bare = verifier.verifyProof(calldata.proof, calldata.instances, sender=deployer)
            attest = provenance.attestInference(head_id, seqs, calldata.proof, calldata.instances, sender=deployer)
            results[side.name] = {
                "attest_gas": int(attest.gas_used),
                "attest_gas_per_inference": round(int(attest.gas_used) / side.batch, 1),
                "verifier_gas_per_inference": round(int(bare.gas_used) / side.batch, 1),
                "verifier_runtime_bytes": side.verifier.runtime_size,
            }
    return results


@click.command()
@click.option(
    "--batch",
    type=click.IntRange(2, 256),
    default=196,
    show_default=True,
    help="Tuned inferences per proof (2,667 rows each for the shipped 64-value head: 196 fill a 2^19-row proof, "
    "98 a 2^18-row one).",
)
@click.option(
    "--head",
    "head_folder",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=ROOT / HEAD_FOLDER,
    help="The trained curation head to prove (default: the shipped models/curation-head)",
)
@click.option("--baseline-proofs", type=click.IntRange(1), default=3, show_default=True)
def main(batch: int, head_folder: Path, baseline_proofs: int) -> None:
    """Proven inferences per minute, proving memory, setup time and attestation gas: baseline vs tuned."""
    head = CurationHead.from_state(load_weights(head_folder))
    decider = HeadModel.load(head_folder)
    embed_dim, hidden = head.shape.embed_dim, head.shape.hidden
    rng = random.Random(20261123)
    with tempfile.TemporaryDirectory(prefix="proofmint-bench-zk-") as tmp:
        cache = Path(tmp)
        baseline = measure("baseline", head, 1, EZKL_DEFAULTS, baseline_proofs, cache / "baseline", rng)
        tuned = measure("tuned", head, batch, TUNED, 1, cache / "tuned", rng)
        started = time.monotonic()
        onnx = cache / "tuned" / "tuned.onnx"
        Circuit.build(onnx, cache / "tuned", batch=batch, embed_dim=embed_dim, tuning=TUNED)
        setup_cached_s = time.monotonic() - started
        gas = chain_gas([baseline, tuned], (decider.accept_fixed, decider.review_fixed))

    rows = [
        ("inferences per proof", baseline.batch, tuned.batch),
        ("logrows", baseline.logrows, tuned.logrows),
        ("setup, cold cache (s)", round(baseline.setup_s, 1), round(tuned.setup_s, 1)),
        ("prove one proof (s)", round(sum(baseline.prove_s) / len(baseline.prove_s), 1), round(tuned.prove_s[0], 1)),
        ("proven inferences per minute", round(baseline.per_min, 1), round(tuned.per_min, 1)),
        ("proving peak RSS (MB)", round(baseline.peak_rss_mb), round(tuned.peak_rss_mb)),
        ("attestInference gas per inference", gas["baseline"]["attest_gas_per_inference"],
         gas["tuned"]["attest_gas_per_inference"]),
        ("  of which verifier call, per inference", gas["baseline"]["verifier_gas_per_inference"],
         gas["tuned"]["verifier_gas_per_inference"]),
        ("verifier runtime code (bytes)", gas["baseline"]["verifier_runtime_bytes"],
         gas["tuned"]["verifier_runtime_bytes"]),
    ]  # fmt: skip
    width = max(len(r[0]) for r in rows)
    click.echo(
        f"trained curation head {embed_dim}-{hidden}-1 ({head_folder.name}), hashed input, fixed params, "
        "public output, safe checks"
    )
    click.echo(f"{'figure':<{width}}  {'baseline (ezkl defaults)':>26}  {'tuned':>14}")
    click.echo("-" * (width + 44))
    for name, base, tuned_value in rows:
        click.echo(f"{name:<{width}}  {base:>26,}  {tuned_value:>14,}")
    speedup = tuned.per_min / baseline.per_min
    click.echo(f"speed-up {speedup:.1f}x (target >= 10x); setup on a warm cache {setup_cached_s:.2f} s")
    click.echo(f"attestation gas per inference {gas['tuned']['attest_gas_per_inference']:,} (target <= 15,000)")
    figures = {
        "batch": tuned.batch,
        "embed_dim": embed_dim,
        "logrows": tuned.logrows,
        "baseline_inferences_per_min": round(baseline.per_min, 2),
        "tuned_inferences_per_min": round(tuned.per_min, 2),
        "speedup": round(speedup, 2),
        "verify_gas_per_inference": gas["tuned"]["attest_gas_per_inference"],
        "verify_gas_per_inference_baseline": gas["baseline"]["attest_gas_per_inference"],
        "verifier_only_gas_per_inference": gas["tuned"]["verifier_gas_per_inference"],
        "prove_peak_rss_mb": round(tuned.peak_rss_mb, 1),
        "prove_peak_rss_mb_baseline": round(baseline.peak_rss_mb, 1),
        "setup_s": round(tuned.setup_s, 2),
        "setup_cached_s": round(setup_cached_s, 3),
        "baseline_setup_s": round(baseline.setup_s, 2),
    }
    click.echo(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    main()
