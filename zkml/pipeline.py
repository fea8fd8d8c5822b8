"""One circuit, built once and cached: ONNX -> pinned settings -> calibration -> compiled circuit
-> SRS -> keys -> Solidity verifier; then witness -> proof -> verification for each batch.

Artifacts live in `<cache>/<key>/` where the key is sha256(ONNX bytes ‖ pinned choices ‖ tuning ‖
ezkl version ‖ SRS origin), so a new model version, other pins, other tuning, another ezkl or a
public SRS instead of a generated one never reuse a stale key. Each step writes its file through
a temporary name and a rename, so a crash leaves either the finished file or none, and a second
run skips every step whose file exists. Builders of one circuit on one host take turns (a lock
file in its folder): a generated SRS is random, so two racing builders could otherwise leave the
keys of one SRS beside another.

Every function here blocks (ezkl is CPU-bound Rust); agents call them through an executor.
ezkl's Python API takes the proving key by path, so each `prove` reads it from disk (the page
cache keeps it warm); it cannot be held in memory across calls from Python.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import random
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import ezkl as _ezkl

from zkml.errors import ZkmlError
from zkml.evm import (
    FIELD_MODULUS,
    INSTANCES_PER_ASSET,
    CompiledVerifier,
    ProofCalldata,
    compile_verifier,
    decode_signed,
    felt_to_int,
    proof_calldata,
    proven_digest,
    render_verifier,
)
from zkml.poseidon import hasher
from zkml.settings import PINNED, PinnedSettings, check_pinned, write_settings
from zkml.srs import SrsPolicy, check_public_srs

Progress = Callable[[str], None]

# ezkl ships stubs that mark every keyword with a default as required; use it untyped.
ezkl: Any = _ezkl


class ProvingError(ZkmlError):
    """An ezkl step failed; the message names the step and the artifact directory."""


def _quiet(_: str) -> None:
    return None


_log = logging.getLogger(__name__)


class _FidelityReport(logging.Filter):
    """ezkl logs calibration's numerical fidelity table (the quantisation errors it measured) as
    a warning on `ezkl.execute` every time, whether anything is wrong or not. The table goes to
    this module's debug log instead, so a console's warnings are the ones that mean something."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "Numerical Fidelity Report" not in message:
            return True
        _log.debug("ezkl calibration: %s", message)
        return False


@dataclass(frozen=True)
class HeadInput:
    """One inference's input: an asset's image embedding and its content digest (sha256 of the
    image bytes, the ERC-721 token id), whose proven digest (`zkml.evm.proven_digest`, the top
    253 bits of its keccak256) the circuit reads after the embedding and passes through to its public outputs.
    ValueError for a digest that is not 32 bytes."""

    embedding: Sequence[float]
    digest: bytes

    def __post_init__(self) -> None:
        if len(self.digest) != 32:
            raise ValueError(f"a content digest is 32 bytes, not {len(self.digest)}")


@dataclass(frozen=True)
class Tuning:
    """What the project tunes (the pins are never tuned).

    `num_inner_cols` 1 gives the fewest advice columns, which keeps the generated verifier under
    EIP-170 and its verification cheaper, at a few more rows. `decomp_base` and `decomp_legs` size
    the range checks of the circuit's intermediate values (its inputs and outputs are not
    range-checked: `PinnedSettings.ignore_range_check_inputs_outputs`): ezkl's default base 2^14
    alone forces 2^15 rows, while two 16-value embeddings with their digests need 1,434, so base
    2^10 with 3 legs (values below 2^30) lets a small batch fit in 2^11 rows. None keeps ezkl's
    default. `target` is ezkl's calibration target."""

    num_inner_cols: int | None = 1
    decomp_base: int | None = 1 << 10
    decomp_legs: int | None = 3
    target: str = "resources"


TUNED = Tuning()
EZKL_DEFAULTS = Tuning(num_inner_cols=None, decomp_base=None, decomp_legs=None)
"""ezkl's own defaults (2 inner columns, range checks of base 2^14 with 2 legs): the benchmark's
baseline."""


@dataclass(frozen=True)
class Artifacts:
    root: Path

    @property
    def onnx(self) -> Path:
        return self.root / "model.onnx"

    @property
    def settings(self) -> Path:
        return self.root / "settings.json"

    @property
    def calibration(self) -> Path:
        return self.root / "calibration.json"

    @property
    def compiled(self) -> Path:
        return self.root / "model.compiled"

    @property
    def srs(self) -> Path:
        return self.root / "kzg.srs"

    @property
    def vk(self) -> Path:
        return self.root / "vk.key"

    @property
    def pk(self) -> Path:
        return self.root / "pk.key"

    @property
    def verifier_source(self) -> Path:
        return self.root / "Verifier.sol"

    @property
    def verifier_build(self) -> Path:
        return self.root / "verifier.json"


def circuit_key(onnx_bytes: bytes, pinned: PinnedSettings, tuning: Tuning, srs_label: str = "gen-srs") -> str:
    """The cache key of a circuit: model graph, pins, tuning, ezkl version and SRS origin."""
    digest = hashlib.sha256()
    digest.update(hashlib.sha256(onnx_bytes).digest())
    digest.update(json.dumps(asdict(pinned), sort_keys=True).encode())
    digest.update(json.dumps(asdict(tuning), sort_keys=True).encode())
    digest.update(str(getattr(ezkl, "__version__", "unknown")).encode())
    digest.update(srs_label.encode())
    return digest.hexdigest()[:32]


def _fresh(path: Path) -> Path:
    """A temporary sibling to write before renaming onto `path`."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def _run(step: str, ok: Any, artifacts: Artifacts) -> None:
    if ok is False:
        raise ProvingError(f"ezkl {step} failed (artifacts in {artifacts.root})")


@contextlib.contextmanager
def _building(root: Path) -> Iterator[None]:
    """Hold the circuit folder's build lock (released by the kernel if the holder dies)."""
    with (root / ".build.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _atomic(path: Path, make: Callable[[Path], object]) -> None:
    tmp = _fresh(path)
    try:
        make(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


@dataclass
class Circuit:
    """A built circuit: everything needed to prove and verify batches of `batch` rows
    (`HeadInput`: an `embed_dim`-value embedding and a content digest)."""

    artifacts: Artifacts
    batch: int
    embed_dim: int

    @classmethod
    def build(
        cls,
        onnx_path: Path,
        cache: Path,
        *,
        batch: int,
        embed_dim: int,
        tuning: Tuning = TUNED,
        pinned: PinnedSettings = PINNED,
        srs: SrsPolicy | None = None,
        progress: Progress = _quiet,
    ) -> Circuit:
        """Build (or find in `cache`) the circuit of an exported head. `srs` defaults to a local
        development chain's policy (an SRS generated here)."""
        policy = srs or SrsPolicy.for_local_chain()
        onnx_bytes = onnx_path.read_bytes()
        artifacts = Artifacts(cache / circuit_key(onnx_bytes, pinned, tuning, policy.label))
        artifacts.root.mkdir(parents=True, exist_ok=True)
        circuit = cls(artifacts, batch, embed_dim)
        steps: list[tuple[str, Path, Callable[[Path], object]]] = [
            ("model", artifacts.onnx, lambda tmp: shutil.copyfile(onnx_path, tmp)),
            ("calibration data", artifacts.calibration, circuit._write_calibration),
            ("settings", artifacts.settings, lambda tmp: circuit._settings(tmp, pinned, tuning)),
            ("compile", artifacts.compiled, circuit._compile),
            ("srs", artifacts.srs, lambda tmp: circuit._srs(tmp, policy)),
            ("keys", artifacts.pk, circuit._keys),
        ]
        with _building(artifacts.root):
            for name, path, make in steps:
                if path.exists():
                    progress(f"{name}: cached")
                    continue
                progress(f"{name}: running")
                started = time.monotonic()
                _atomic(path, make)
                progress(f"{name}: {time.monotonic() - started:.1f} s")
        check_pinned(artifacts.settings, pinned)
        return circuit

    @property
    def logrows(self) -> int:
        return int(self.settings()["run_args"]["logrows"])

    def settings(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.artifacts.settings.read_text(encoding="utf8"))
        return loaded

    # -------------------------------------------------------------- build steps

    def _write_calibration(self, tmp: Path) -> None:
        """Four samples per input: embedding values in [-1, 1], the proven digest as a small
        float (it only passes through, so its range does not shape the circuit)."""
        rng = random.Random(20261123)
        width = self.embed_dim + 1
        inputs = [
            [rng.uniform(-1.0, 1.0) if i % width < self.embed_dim else rng.uniform(0.0, 1.0) for i in range(width * 4)]
            for _ in range(self.batch)
        ]
        tmp.write_text(json.dumps({"input_data": inputs}), encoding="utf8")

    def _settings(self, tmp: Path, pinned: PinnedSettings, tuning: Tuning) -> None:
        args = pinned.run_args()
        if tuning.num_inner_cols is not None:
            args.num_inner_cols = tuning.num_inner_cols
        if tuning.decomp_base is not None:
            args.decomp_base = tuning.decomp_base
        if tuning.decomp_legs is not None:
            args.decomp_legs = tuning.decomp_legs
        write_settings(self.artifacts.onnx, tmp, pinned, run_args=args)
        # Rebase multiplier 1: every product is rescaled to the input scale, so scores come out at
        # 2^-input_scale and fit the registry's 30-bit record, and the score is the quotient of
        # that rescale, which ezkl range-checks in the circuit (the output itself is not checked:
        # `ignore_range_check_inputs_outputs`). Left free, calibration keeps the products
        # unscaled (scores at 2^-39, with either tuning), which the registry would refuse.
        execute_log, fidelity = logging.getLogger("ezkl.execute"), _FidelityReport()
        execute_log.addFilter(fidelity)
        try:
            ok = ezkl.calibrate_settings(
                data=str(self.artifacts.calibration),
                model=str(self.artifacts.onnx),
                settings=str(tmp),
                target=tuning.target,
                scales=[pinned.input_scale],
                scale_rebase_multiplier=[1],
            )
        finally:
            execute_log.removeFilter(fidelity)
        _run("calibrate_settings", ok, self.artifacts)
        check_pinned(tmp, pinned)  # calibration must not have moved a pin

    def _compile(self, tmp: Path) -> None:
        ok = ezkl.compile_circuit(
            model=str(self.artifacts.onnx), compiled_circuit=str(tmp), settings_path=str(self.artifacts.settings)
        )
        _run("compile_circuit", ok, self.artifacts)

    def _srs(self, tmp: Path, policy: SrsPolicy) -> None:
        if policy.local:
            ezkl.gen_srs(str(tmp), self.logrows)
        else:
            shutil.copyfile(check_public_srs(policy, self.logrows), tmp)

    def _keys(self, tmp_pk: Path) -> None:
        tmp_vk = _fresh(self.artifacts.vk)
        try:
            ok = ezkl.setup(
                model=str(self.artifacts.compiled),
                vk_path=str(tmp_vk),
                pk_path=str(tmp_pk),
                srs_path=str(self.artifacts.srs),
            )
            _run("setup", ok, self.artifacts)
            tmp_vk.replace(self.artifacts.vk)
        finally:
            tmp_vk.unlink(missing_ok=True)

    # -------------------------------------------------------------- verifier

    def verifier(self, solc: Path, progress: Progress = _quiet) -> CompiledVerifier:
        """The Solidity verifier of this circuit's verifying key, compiled with `solc` (cached)."""
        build = self.artifacts.verifier_build
        if build.exists():
            progress("verifier: cached")
            saved = json.loads(build.read_text(encoding="utf8"))
            return CompiledVerifier(
                source=self.artifacts.verifier_source,
                abi=saved["abi"],
                bytecode=bytes.fromhex(saved["bytecode"]),
                runtime_size=int(saved["runtime_size"]),
                vk_digest=bytes.fromhex(saved["vk_digest"]),
            )
        progress("verifier: running")
        started = time.monotonic()
        source = self.artifacts.verifier_source
        artifacts = self.artifacts
        _atomic(source, lambda tmp: render_verifier(artifacts.vk, artifacts.settings, artifacts.srs, tmp))
        compiled = compile_verifier(source, solc)
        record = {
            "abi": compiled.abi,
            "bytecode": compiled.bytecode.hex(),
            "runtime_size": compiled.runtime_size,
            "vk_digest": compiled.vk_digest.hex(),
        }
        _atomic(build, lambda tmp: tmp.write_text(json.dumps(record), encoding="utf8"))
        progress(f"verifier: {time.monotonic() - started:.1f} s ({compiled.runtime_size:,} bytes of runtime code)")
        return compiled

    # -------------------------------------------------------------- proving

    def _check_batch(self, rows: Sequence[HeadInput]) -> None:
        if len(rows) != self.batch or any(len(row.embedding) != self.embed_dim for row in rows):
            raise ValueError(f"expected {self.batch} embeddings of {self.embed_dim} values")

    def commitments(self, rows: Sequence[HeadInput]) -> list[int]:
        """The input commitment of each row, as the proof's instances will carry it (see
        `input_commitment`). An asset registers this before any proof of it exists."""
        scale = int(self.settings()["run_args"]["input_scale"])
        return [input_commitment(row, scale) for row in rows]

    def prove(self, rows: Sequence[HeadInput], work: Path) -> dict[str, Any]:
        """Prove one batch; returns the proof JSON (its `instances` hold the input commitments,
        then the scores, then the proven digests). `work` receives the input, witness and proof
        files."""
        self._check_batch(rows)
        work.mkdir(parents=True, exist_ok=True)
        data, witness, proof = work / "input.json", work / "witness.json", work / "proof.json"
        scale = int(self.settings()["run_args"]["input_scale"])
        data.write_text(json.dumps({"input_data": [input_felts(row, scale) for row in rows]}), encoding="utf8")
        ezkl.gen_witness(
            data=str(data), model=str(self.artifacts.compiled), output=str(witness), srs_path=str(self.artifacts.srs)
        )
        result = ezkl.prove(
            witness=str(witness),
            model=str(self.artifacts.compiled),
            pk_path=str(self.artifacts.pk),
            proof_path=str(proof),
            srs_path=str(self.artifacts.srs),
        )
        _run("prove", result is not None, self.artifacts)
        loaded: dict[str, Any] = json.loads(proof.read_text(encoding="utf8"))
        return loaded

    def calldata(self, proof_json: dict[str, Any]) -> ProofCalldata:
        """The (proof, instances) arguments of the verifier and of `attestInference`."""
        calldata = proof_calldata(proof_json)
        expected = INSTANCES_PER_ASSET * self.batch
        if len(calldata.instances) != expected:
            raise ProvingError(f"a proof of this circuit has {expected} instances, not {len(calldata.instances)}")
        return calldata

    def verify(self, proof_path: Path) -> bool:
        """ezkl's own verification of a proof file; False (not an exception) for a bad proof."""
        try:
            return bool(
                ezkl.verify(
                    proof_path=str(proof_path),
                    settings_path=str(self.artifacts.settings),
                    vk_path=str(self.artifacts.vk),
                    srs_path=str(self.artifacts.srs),
                )
            )
        except (RuntimeError, ValueError):
            return False


def input_felts(row: HeadInput, input_scale: int) -> list[str]:
    """The field elements the circuit reads for one row, as ezkl's input JSON takes them
    (little-endian hex): the embedding quantized at `input_scale` (what `ezkl.float_to_felt`
    makes of each value), then ONE felt, the content digest's proven digest as it is
    (`zkml.evm.proven_digest`)."""
    embedding = [ezkl.float_to_felt(float(x), input_scale, ezkl.PyInputType.F64) for x in row.embedding]
    return [*embedding, proven_digest(row.digest).to_bytes(32, "little").hex()]


def quantized(embedding: Sequence[float], input_scale: int) -> list[int]:
    """The embedding as the circuit reads it, as signed integers: each value x is the integer
    ezkl makes of it at 2^-input_scale (`ezkl.float_to_felt`, x * 2^input_scale rounded). What
    the published metadata carries (`headInput`), so that anyone can hash the committed row
    exactly (`quantized_commitment`) and compare it with an embedding they recompute."""
    return [
        decode_signed(felt_to_int(ezkl.float_to_felt(float(x), input_scale, ezkl.PyInputType.F64))) for x in embedding
    ]


def quantized_commitment(values: Sequence[int], digest: bytes) -> int:
    """Poseidon hash of a quantized row (`quantized`) then the proven digest of `digest`: the
    input commitment, from the integers the circuit reads (`input_commitment` of the floats
    they quantize)."""
    felts = [(int(v) % FIELD_MODULUS).to_bytes(32, "little") for v in values]
    felts.append(proven_digest(digest).to_bytes(32, "little"))
    return hasher()(b"".join(felts), len(felts))


def input_commitment(row: HeadInput, input_scale: int) -> int:
    """Poseidon hash of a row's input felts (`input_felts`: the quantized embedding, then the
    proven digest), as EZKL's hashed input computes it: the commitment an asset registers. Hashed
    natively (`zkml.poseidon`), the same hash as `ezkl.poseidon_hash`."""
    return quantized_commitment(quantized(row.embedding, input_scale), row.digest)
