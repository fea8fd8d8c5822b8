"""`ape compile` output equals solc-js's own output for the same standard-JSON input and settings.

The input is the one ape-solidity builds for the whole project, as `ape compile` does:
sources with contents, remappings, optimizer, EVM version (all of these enter the metadata hash).
It is fed straight to `require('solc').compile` with no wrapper and no import callback, so any
difference would come from the ape path (wrapper, remapping, import resolution).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

COMPILE_JS = """
const fs = require('fs');
const solc = require(process.argv[1]);
const out = solc.compile(fs.readFileSync(0, 'utf8'));
fs.writeSync(1, out);
"""


@pytest.fixture(scope="module")
def solcjs_output(project, compilers) -> dict:  # type: ignore[no-untyped-def]
    """The whole tree compiled once by solc-js from the standard JSON ape builds."""
    sources = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "contracts").rglob("*.sol") if ".cache" not in p.parts)
    with project.isolate_in_tempdir() as isolated:
        inputs = compilers.solidity.get_standard_input_json([isolated.path / s for s in sources], project=isolated)
    assert len(inputs) == 1
    ((version, standard_json),) = inputs.items()
    assert str(version).startswith("0.8.28")
    assert standard_json["settings"]["optimizer"]["enabled"] is True
    assert standard_json["settings"]["evmVersion"] == "cancun"
    assert set(sources) <= set(standard_json["sources"])  # every contract of the tree, as ape compiles it

    result = subprocess.run(
        ["node", "-e", COMPILE_JS, str(ROOT / "node_modules" / "solc")],
        input=json.dumps(standard_json),
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    out = json.loads(result.stdout)
    assert not [e for e in out.get("errors", []) if e["severity"] == "error"]
    return out


@pytest.mark.parametrize(
    ("source_id", "name"),
    [("contracts/ModelRegistry.sol", "ModelRegistry"), ("contracts/test/TestToken.sol", "TestToken")],
)
def test_ape_bytecode_equals_solcjs_for_same_input(project, solcjs_output, source_id: str, name: str):
    evm = solcjs_output["contracts"][source_id][name]["evm"]
    contract_type = getattr(project, name).contract_type
    assert contract_type.deployment_bytecode.bytecode == "0x" + evm["bytecode"]["object"]
    assert contract_type.runtime_bytecode.bytecode == "0x" + evm["deployedBytecode"]["object"]
