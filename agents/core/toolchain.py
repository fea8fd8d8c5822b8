"""Find and check the external tools proofmint needs: Node.js, the Solidity compiler, anvil.

Nothing here downloads anything. Each check returns a `ToolStatus` whose `hint` says what to
install when the tool is missing, so the CLI and the set-up script can print one clear line.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from agents.core.errors import ToolchainError

SOLC_VERSION = "0.8.28"
"""The one Solidity compiler version the contracts are written and audited for."""

_VERSION_LINE = re.compile(r"^Version: (\d+\.\d+\.\d+)\+commit\.([0-9a-f]{8})", re.MULTILINE)


@dataclass(frozen=True)
class ToolStatus:
    """What one check found."""

    name: str
    ok: bool
    detail: str
    hint: str = ""


def project_root() -> Path:
    """The repository root: the folder holding ape-config.yaml above this package."""
    here = Path(__file__).resolve().parent
    for candidate in (here, *here.parents):
        if (candidate / "ape-config.yaml").is_file():
            return candidate
    raise ToolchainError("proofmint must run from a checkout: no ape-config.yaml above " + str(here))


def solc_binary_dir(root: Path) -> Path:
    """Where py-solc-x looks for `solc-v<version>`: $SOLCX_BINARY_PATH, else the project cache."""
    env = os.environ.get("SOLCX_BINARY_PATH")
    return Path(env) if env else root / ".cache" / "solcx"


def _run(argv: list[str], timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


def solc_executable(root: Path) -> Path:
    """The project's solc 0.8.28 (native, or the solc-js wrapper `make setup` installs)."""
    return solc_binary_dir(root) / f"solc-v{SOLC_VERSION}"


def parse_solc_version(output: str) -> tuple[str, str] | None:
    """Return (version, commit) from the output of `solc --version`, or None."""
    match = _VERSION_LINE.search(output)
    return (match.group(1), match.group(2)) if match else None


def check_node() -> ToolStatus:
    node = shutil.which("node")
    if node is None:
        return ToolStatus("node", False, "not found", "install Node.js >= 18 (Debian: apt-get install nodejs npm)")
    version = _run([node, "--version"]).stdout.strip()
    major = int(version.lstrip("v").split(".")[0]) if version.startswith("v") else 0
    if major < 18:
        return ToolStatus("node", False, version, "Node.js >= 18 is needed (Debian: apt-get install nodejs)")
    return ToolStatus("node", True, f"{version} at {node}")


def check_solc(root: Path) -> ToolStatus:
    binary = solc_executable(root)
    if not binary.exists():
        return ToolStatus("solc", False, f"{binary} missing", "run `make setup` (installs solc-js and its wrapper)")
    result = _run([str(binary), "--version"])
    parsed = parse_solc_version(result.stdout)
    if result.returncode != 0 or parsed is None:
        message = (result.stderr or result.stdout).strip().splitlines()
        return ToolStatus("solc", False, message[-1] if message else "no output", "run `make setup`")
    if parsed[0] != SOLC_VERSION:
        return ToolStatus("solc", False, f"{parsed[0]} at {binary}", f"solc {SOLC_VERSION} is required")
    kind = "solc-js" if "Emscripten" in result.stdout else "native"
    return ToolStatus("solc", True, f"{parsed[0]}+commit.{parsed[1]} ({kind}) at {binary}")


def check_anvil(root: Path) -> ToolStatus:
    anvil = shutil.which("anvil") or str(root / "node_modules" / ".bin" / "anvil")
    if not Path(anvil).exists():
        return ToolStatus("anvil", False, "not found", "run `npm ci` (installs @foundry-rs/anvil-linux-amd64)")
    result = _run([anvil, "--version"])
    if result.returncode != 0:
        return ToolStatus("anvil", False, result.stderr.strip()[:200], "anvil ships for linux-x64 only; run `npm ci`")
    return ToolStatus("anvil", True, result.stdout.strip().splitlines()[0])


def check_openzeppelin(root: Path) -> ToolStatus:
    package = root / "node_modules" / "@openzeppelin" / "contracts" / "package.json"
    if not package.is_file():
        return ToolStatus("openzeppelin", False, "node_modules/@openzeppelin/contracts missing", "run `npm ci`")
    match = re.search(r'"version"\s*:\s*"([^"]+)"', package.read_text(encoding="utf8"))
    return ToolStatus("openzeppelin", True, match.group(1) if match else "unknown version")


def check_all(root: Path) -> list[ToolStatus]:
    """Run every check; never raises for a missing tool."""
    return [check_node(), check_solc(root), check_openzeppelin(root), check_anvil(root)]
