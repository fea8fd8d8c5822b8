"""Content digests of what proofmint registers: single files and model weight folders."""

from __future__ import annotations

import hashlib
from pathlib import Path

CHUNK = 1 << 20


def sha256_file(path: Path) -> bytes:
    """sha256 of a file's bytes, read in 1 MiB chunks (weights can be gigabytes)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.digest()


def weights_digest(path: Path, *, follow_links: bool = False) -> bytes:
    """The weights digest ModelRegistry records.

    A file: sha256 of its bytes. A folder (a diffusers or open_clip checkpoint): sha256 over one
    line per regular file, `<relative posix path>\\0<sha256 hex>\\n`, sorted by path, so the digest
    depends on names and contents only, never on timestamps or the order the disk lists them in.
    Symbolic links are refused rather than silently followed or skipped, unless `follow_links`
    (a Hugging Face cache snapshot links every file to its blob): then a linked file counts
    under its own name with its target's bytes, so the digest equals that of a plain copy.
    """
    if path.is_file():
        return sha256_file(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such file or folder")
    lines: list[str] = []
    for item in sorted(path.rglob("*")):
        rel = item.relative_to(path).as_posix()
        if item.is_symlink() and not follow_links:
            raise ValueError(f"{item}: symbolic links are not hashed; copy the file into the folder")
        if item.is_file():
            lines.append(f"{rel}\0{sha256_file(item).hex()}\n")
    if not lines:
        raise ValueError(f"{path}: the folder holds no files")
    return hashlib.sha256("".join(sorted(lines)).encode()).digest()
