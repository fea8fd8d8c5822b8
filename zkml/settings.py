"""Pinned EZKL circuit settings.

What a proof must commit to is not left to ezkl's defaults:
- input `hashed` (public hash): the proof commits to the exact embedding, and the hash is the
  input commitment an asset registers;
- parameters `fixed`: the weights are baked into the circuit, so the verifying key belongs to one
  model version;
- output `public`: the scores are public instances the contract decodes;
- `check_mode` `safe`: ezkl's default `UNSAFE` skips its own range checks;
- `input_scale` fixed (2^13): the input commitment is the Poseidon hash of the embedding
  quantized at this scale (then the proven digest), and an asset registers it before any proof
  exists, so calibration must never move it;
- `ignore_range_check_inputs_outputs` true: the circuit takes its inputs as field elements, so a
  content digest's 253-bit proven digest (`zkml.evm.PROVEN_DIGEST_BITS`) passes through whole.
  ezkl would otherwise range-check every input and output to decomp_base^decomp_legs. Nothing the
  chain relies on loses a check: the inputs are pinned by their Poseidon commitment (registered
  with the asset before any proof, and bound with its proven digest in the record's input
  binding), the score is the output of a rescale whose quotient ezkl range-checks inside the
  circuit, and `ProvenanceRegistry` refuses a score of 2^30 or more in magnitude.

`check_pinned` re-reads a settings file and refuses one where any of these differs, after
`gen_settings` and again after calibration, so nothing downstream can quietly change them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ezkl as _ezkl

from zkml.errors import ZkmlError

# ezkl ships stubs that mark every keyword with a default as required; use it untyped.
ezkl: Any = _ezkl


class SettingsError(ZkmlError):
    """A circuit settings file does not carry the pinned visibilities or check mode."""


@dataclass(frozen=True)
class PinnedSettings:
    input_visibility: str = "hashed"
    output_visibility: str = "public"
    param_visibility: str = "fixed"
    check_mode: str = "safe"
    input_scale: int = 13
    ignore_range_check_inputs_outputs: bool = True

    def run_args(self) -> Any:
        # ezkl's type stubs omit the visibility and check-mode attributes PyRunArgs has; the
        # settings test reads every one of them back from the file ezkl writes.
        args: Any = ezkl.PyRunArgs()
        args.input_visibility = self.input_visibility
        args.output_visibility = self.output_visibility
        args.param_visibility = self.param_visibility
        args.check_mode = self.check_mode
        args.input_scale = self.input_scale
        args.ignore_range_check_inputs_outputs = self.ignore_range_check_inputs_outputs
        return args


PINNED = PinnedSettings()


def _visibility_name(value: Any) -> str:
    """ezkl writes a visibility as a string ("Public") or a one-key object ({"Hashed": {...}})."""
    if isinstance(value, str):
        return value.lower()
    if isinstance(value, dict) and len(value) == 1:
        return str(next(iter(value))).lower()
    return repr(value)


def check_pinned(settings_path: Path, pinned: PinnedSettings = PINNED) -> dict[str, Any]:
    """The settings file's contents, if it carries every pinned choice (a missing key is a
    difference); SettingsError naming each difference otherwise."""
    try:
        settings = json.loads(settings_path.read_text(encoding="utf8"))
        run_args = settings["run_args"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SettingsError(f"{settings_path}: not an ezkl settings file ({exc})") from exc
    found = {
        "input_visibility": _visibility_name(run_args.get("input_visibility")),
        "output_visibility": _visibility_name(run_args.get("output_visibility")),
        "param_visibility": _visibility_name(run_args.get("param_visibility")),
        "check_mode": str(run_args.get("check_mode")).lower(),
        "input_scale": run_args.get("input_scale"),
        # Absent from the file (another ezkl, a hand-written file) reads as None: refused.
        "ignore_range_check_inputs_outputs": run_args.get("ignore_range_check_inputs_outputs"),
    }
    wrong = [
        f"{key} is {value!r}, pinned {getattr(pinned, key)!r}"
        for key, value in found.items()
        if value != getattr(pinned, key)
    ]
    hashed = run_args.get("input_visibility")
    if pinned.input_visibility == "hashed" and not (
        isinstance(hashed, dict) and hashed.get("Hashed", {}).get("hash_is_public")
    ):
        wrong.append("the input hash is not public")
    if wrong:
        raise SettingsError(f"{settings_path}: " + "; ".join(wrong))
    return dict(settings)


def write_settings(
    onnx_path: Path, settings_path: Path, pinned: PinnedSettings = PINNED, *, run_args: Any = None
) -> dict[str, Any]:
    """Generate the settings of `onnx_path` with the pinned choices (on `run_args`, tuned by the
    caller, if given) and check the file ezkl wrote."""
    settings_path.parent.mkdir(parents=True, exist_ok=True)
    args = pinned.run_args() if run_args is None else run_args
    if not ezkl.gen_settings(str(onnx_path), str(settings_path), py_run_args=args):
        raise SettingsError(f"ezkl.gen_settings failed for {onnx_path}")
    return check_pinned(settings_path, pinned)
