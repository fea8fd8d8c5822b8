"""py-evm's BN254 precompiles computed once per distinct input in a test process.

py-evm computes ecMul and ecPairing in pure Python (py_ecc): about 11 ms an ecMul and 0.7 s a
pairing check on the 2-core CI machine, and each EZKL verifier call on the embedded chain makes
dozens of ecMuls and one pairing. In the suites most of those inputs were given before: the same
proof verified again after a snapshot is restored, for another asset of its batch, or by the
contract and then by ERC-7007 `verify` (test_attest_inference.py and
test_attestation_verdicts.py: 17 distinct pairings of 41, 1,067 distinct ecMuls of 2,583, 59 s
of their 100 s). Both are pure functions of their input bytes, so a result is reused for the same
bytes: the EVM still runs the precompile (gas is charged from the input's length, as before) and
every new input is computed by py_ecc. Inputs py_ecc refuses raise every time (nothing cached)."""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import Any


def _memoised(compute: Callable[[Any], Any]) -> Callable[[Any], Any]:
    @functools.lru_cache(maxsize=4096)
    def once(data: bytes) -> Any:
        return compute(data)

    @functools.wraps(compute)
    def by_bytes(data: Any) -> Any:
        return once(bytes(data))

    by_bytes.cache_info = once.cache_info  # type: ignore[attr-defined]
    return by_bytes


def install() -> None:
    """Memoise `_ecpairing` and `_ecmull` in py-evm's precompile modules (once per process)."""
    for name, function in (("eth.precompiles.ecpairing", "_ecpairing"), ("eth.precompiles.ecmul", "_ecmull")):
        module = importlib.import_module(name)
        current = getattr(module, function)
        if not hasattr(current, "cache_info"):
            setattr(module, function, _memoised(current))
