"""The JavaScript reference (tools/unixfs-ref.mjs: ipfs-unixfs-importer and @ipld/car from npm)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "tools" / "unixfs-ref.mjs"


def _node(*args: str) -> str:
    node = shutil.which("node")
    assert node is not None, "Node.js is part of the toolchain (make setup)"
    result = subprocess.run([node, str(SCRIPT), *args], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def reference_cid(path: Path, version: int, chunk_size: int = 262_144, max_links: int = 174) -> str:
    return _node("cid", str(path), str(version), str(chunk_size), str(max_links))


def reference_car(path: Path) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(_node("car", str(path)))
    return report
