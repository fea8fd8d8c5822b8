"""One circuit, built once and cached: ONNX -> pinned settings -> calibration -> compiled circuit
-> keys; then witness -> proof -> verification for each batch of embeddings.

Artifacts live in `<cache>/<key>/` where the key is sha256(ONNX bytes ‖ pinned choices ‖ ezkl
version ‖ calibration target), so a new model version, other pins or another ezkl never reuse a
stale key. Each step writes its file through a temporary name and a rename, so a crash leaves
either the finished file or none, and a second run skips every step whose file exists.

Every function here blocks (ezkl is CPU-bound Rust); agents call them through an executor.
The SRS made here by `gen_srs` is for development chains only (whoever ran it knows its toxic
waste); live-network SRS handling is a separate step of the zkml issue.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import ezkl as _ezkl

from agents.errors import PermanentError
from zkml.settings import PINNED, PinnedSettings, check_pinned, write_settings

Progress = Callable[[str], None]

# ezkl ships stubs that mark every keyword with a default as required; use it untyped.
ezkl: Any = _ezkl


class ProvingError(PermanentError):
    """An ezkl step failed; the message names the step and the artifact directory."""


def _quiet(_: str) -> None:
    return None


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


def circuit_key(onnx_bytes: bytes, pinned: PinnedSettings, target: str) -> str:
    """The cache key of a circuit: model graph, pins, ezkl version and calibration target."""
    digest = hashlib.sha256()
    digest.update(hashlib.sha256(onnx_bytes).digest())
    digest.update(json.dumps(asdict(pinned), sort_keys=True).encode())
    digest.update(str(getattr(ezkl, "__version__", "unknown")).encode())
    digest.update(target.encode())
    return digest.hexdigest()[:32]


def _fresh(path: Path) -> Path:
    """A temporary sibling to write before renaming onto `path`."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def _run(step: str, ok: Any, artifacts: Artifacts) -> None:
    if ok is False:
        raise ProvingError(f"ezkl {step} failed (artifacts in {artifacts.root})")


@dataclass
class Circuit:
    """A built circuit: everything needed to prove and verify batches of `batch` embeddings."""

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
        target: str = "resources",
        pinned: PinnedSettings = PINNED,
        progress: Progress = _quiet,
    ) -> Circuit:
        """Build (or find in `cache`) the circuit of an exported head."""
        onnx_bytes = onnx_path.read_bytes()
        artifacts = Artifacts(cache / circuit_key(onnx_bytes, pinned, target))
        artifacts.root.mkdir(parents=True, exist_ok=True)
        circuit = cls(artifacts, batch, embed_dim)
        steps: list[tuple[str, Path, Callable[[Path], object]]] = [
            ("model", artifacts.onnx, lambda tmp: shutil.copyfile(onnx_path, tmp)),
            ("calibration data", artifacts.calibration, circuit._write_calibration),
            ("settings", artifacts.settings, lambda tmp: circuit._settings(tmp, pinned, target)),
            ("compile", artifacts.compiled, circuit._compile),
            ("srs", artifacts.srs, circuit._srs),
            ("keys", artifacts.pk, circuit._keys),
        ]
        for name, path, make in steps:
            if path.exists():
                progress(f"{name}: cached")
                continue
            started = time.monotonic()
            tmp = _fresh(path)
            try:
                make(tmp)
                tmp.replace(path)
            finally:
                tmp.unlink(missing_ok=True)
            progress(f"{name}: {time.monotonic() - started:.1f} s")
        check_pinned(artifacts.settings, pinned)
        return circuit

    # -------------------------------------------------------------- build steps

    def _write_calibration(self, tmp: Path) -> None:
        rng = random.Random(20261123)
        rows = [rng.uniform(-1.0, 1.0) for _ in range(self.batch * self.embed_dim * 4)]
        tmp.write_text(json.dumps({"input_data": [rows]}), encoding="utf8")

    def _settings(self, tmp: Path, pinned: PinnedSettings, target: str) -> None:
        write_settings(self.artifacts.onnx, tmp, pinned)
        ok = ezkl.calibrate_settings(
            data=str(self.artifacts.calibration), model=str(self.artifacts.onnx), settings=str(tmp), target=target
        )
        _run("calibrate_settings", ok, self.artifacts)
        check_pinned(tmp, pinned)  # calibration must not have moved a pin

    def _compile(self, tmp: Path) -> None:
        ok = ezkl.compile_circuit(
            model=str(self.artifacts.onnx), compiled_circuit=str(tmp), settings_path=str(self.artifacts.settings)
        )
        _run("compile_circuit", ok, self.artifacts)

    def _srs(self, tmp: Path) -> None:
        logrows = int(json.loads(self.artifacts.settings.read_text())["run_args"]["logrows"])
        ezkl.gen_srs(str(tmp), logrows)

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

    # -------------------------------------------------------------- proving

    def prove(self, embeddings: Sequence[Sequence[float]], work: Path) -> dict[str, Any]:
        """Prove one batch; returns the proof JSON (its `instances` hold the input hash and the
        scores). `work` receives the input, witness and proof files."""
        if len(embeddings) != self.batch or any(len(row) != self.embed_dim for row in embeddings):
            raise ValueError(f"expected {self.batch} embeddings of {self.embed_dim} values")
        work.mkdir(parents=True, exist_ok=True)
        data, witness, proof = work / "input.json", work / "witness.json", work / "proof.json"
        data.write_text(json.dumps({"input_data": [[float(x) for row in embeddings for x in row]]}), encoding="utf8")
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
