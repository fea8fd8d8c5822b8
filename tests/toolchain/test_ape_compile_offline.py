"""`ape compile` as a user runs it: with the network cut off, and on a broken contract.

Each test compiles a copy of the project in a temporary folder with an empty ape data folder, so
the OpenZeppelin dependency must come from node_modules/ and solc from the offline wrapper.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APE = Path(sys.executable).parent / "ape"


def can_unshare_network() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, check=False)
    return probe.returncode == 0


def make_project(tmp_path: Path, extra: dict[str, str] | None = None) -> Path:
    proj = tmp_path / "proj"
    shutil.copytree(ROOT / "contracts", proj / "contracts", ignore=shutil.ignore_patterns(".cache"))
    shutil.copy(ROOT / "ape-config.yaml", proj / "ape-config.yaml")
    (proj / "node_modules").symlink_to(ROOT / "node_modules")
    for rel, text in (extra or {}).items():
        (proj / rel).write_text(text)
    return proj


def ape_compile(proj: Path, tmp_path: Path, offline: bool) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "APE_DATA_FOLDER": str(tmp_path / "ape-data")}
    argv = [str(APE), "compile", "--force"]
    if offline:
        argv = ["unshare", "-n", *argv]
    return subprocess.run(argv, cwd=proj, env=env, capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.skipif(not can_unshare_network(), reason="needs `unshare -n` (root or user namespaces)")
def test_ape_compile_works_with_the_network_cut_off(tmp_path: Path):
    proj = make_project(tmp_path)
    result = ape_compile(proj, tmp_path, offline=True)
    assert result.returncode == 0, result.stdout + result.stderr
    manifest = (proj / ".build" / "__local__.json").read_text()
    for name in ("ModelRegistry", "TestToken"):
        assert f'"{name}"' in manifest


def test_compile_error_shows_solc_message_with_file_and_line_not_a_traceback(tmp_path: Path):
    broken = "// SPDX-License-Identifier: MIT\npragma solidity 0.8.28;\ncontract Broken {\n  uint x = ;\n}\n"
    proj = make_project(tmp_path, {"contracts/Broken.sol": broken})
    result = ape_compile(proj, tmp_path, offline=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "ParserError" in output
    assert "contracts/Broken.sol:4:" in output
    assert "Traceback" not in output
