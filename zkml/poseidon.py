"""ezkl's Poseidon hash, natively: the input commitment of every published asset.

`ezkl.poseidon_hash` took 11.2 ms of CPU for a head row's 65 values through its Python binding
(the publisher's largest cost); `zkml/native/poseidon.c` computes the same hash (same constants,
same sponge) in 1.9 ms. It is compiled with the machine's C compiler
on first use into `.cache/native/` (named by the source's sha256, built under a lock and renamed
into place, so concurrent first users on one host build it once and never load half a file) and
loaded with ctypes. Where no compiler is found or the build fails, `poseidon_hash` says so once in
the log and uses ezkl's binding, which gives the same hash. tests/zkml/test_poseidon.py compares
the two on edge and random inputs.
"""

from __future__ import annotations

import ctypes
import fcntl
import functools
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import ezkl as _ezkl

from zkml.errors import ZkmlError
from zkml.evm import FIELD_MODULUS

# ezkl ships stubs that mark every keyword with a default as required; use it untyped.
ezkl: Any = _ezkl

_log = logging.getLogger(__name__)

NATIVE = Path(__file__).resolve().parent / "native"
SOURCES = ("poseidon.c", "poseidon_constants.h")

Hasher = Callable[[bytes, int], int]
"""(count 32-byte little-endian values, count) -> the hash."""


class PoseidonError(ZkmlError, ValueError):
    """A value to hash is not a field element (negative, or not below the modulus)."""


def _source_digest() -> str:
    digest = hashlib.sha256()
    for name in SOURCES:
        digest.update((NATIVE / name).read_bytes())
    return digest.hexdigest()[:16]


def _cache_dir() -> Path:
    """The repository's `.cache/native`, or a temporary folder where that cannot be written."""
    preferred = NATIVE.parent.parent / ".cache" / "native"
    try:
        preferred.mkdir(parents=True, exist_ok=True)
        if os.access(preferred, os.W_OK):
            return preferred
    except OSError:
        pass
    fallback = Path(tempfile.gettempdir()) / "proofmint-native"
    fallback.mkdir(parents=True, exist_ok=True)
    return fallback


def build_library(cache: Path) -> Path:
    """Compile the native hash into `cache` (once: a finished library is reused) and return its
    path; ZkmlError when no C compiler is found or the compiler fails."""
    library = cache / f"poseidon-{_source_digest()}.so"
    if library.exists():
        return library
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise ZkmlError("no C compiler (cc or gcc) on PATH")
    with (cache / ".poseidon.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if library.exists():
            return library
        tmp = library.with_name(f".{library.name}.{os.getpid()}.tmp")
        try:
            done = subprocess.run(
                [compiler, "-O3", "-shared", "-fPIC", "-o", str(tmp), str(NATIVE / "poseidon.c")],
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0:
                raise ZkmlError(f"{compiler} failed on {NATIVE / 'poseidon.c'}: {done.stderr.strip()[-2000:]}")
            tmp.replace(library)
        finally:
            tmp.unlink(missing_ok=True)
    return library


def load_native(library: Path) -> Hasher:
    """The hash function of a built library."""
    handle = ctypes.CDLL(str(library))
    function = handle.proofmint_poseidon_hash
    function.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p]
    function.restype = ctypes.c_size_t

    def hash_native(message: bytes, count: int) -> int:
        out = ctypes.create_string_buffer(32)
        bad = function(message, count, out)
        if bad:
            raise PoseidonError(f"value {bad - 1} is not below the field modulus")
        return int.from_bytes(out.raw, "little")

    return hash_native


def hash_with_ezkl(message: bytes, count: int) -> int:
    """ezkl's own binding, on the same input."""
    felts = [message[32 * i : 32 * i + 32].hex() for i in range(count)]
    (hashed,) = ezkl.poseidon_hash(felts)
    return int.from_bytes(bytes.fromhex(hashed.removeprefix("0x")), "little")


@functools.cache
def hasher() -> Hasher:
    """The native hash, built on first use; ezkl's binding where it cannot be built (logged)."""
    try:
        return load_native(build_library(_cache_dir()))
    except (ZkmlError, OSError) as exc:
        _log.warning("native Poseidon unavailable (%s): hashing with ezkl's binding, about six times slower", exc)
        return hash_with_ezkl


def poseidon_hash(values: Sequence[int]) -> int:
    """ezkl's Poseidon hash of field elements given as integers in [0, p); PoseidonError for one
    outside, ValueError for none."""
    if not values:
        raise ValueError("nothing to hash")
    for index, value in enumerate(values):
        if not 0 <= value < FIELD_MODULUS:
            raise PoseidonError(f"value {index} is not a field element: {value}")
    message = b"".join(value.to_bytes(32, "little") for value in values)
    return hasher()(message, len(values))
