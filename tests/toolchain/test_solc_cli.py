"""tools/solc-cli.js: the native-style CLI over solc-js that ape-solidity drives offline."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / "tools" / "solc-cli.js"


def run_cli(*args: str, stdin: str = "", cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["node", str(CLI), *args], input=stdin, capture_output=True, text=True, timeout=120, cwd=cwd, check=False
    )


def standard_input(source: str, **settings: object) -> str:
    return json.dumps(
        {
            "language": "Solidity",
            "sources": {"src/A.sol": {"content": source}},
            "settings": {"outputSelection": {"*": {"*": ["abi", "evm.bytecode.object"]}}, **settings},
        }
    )


def test_version_has_the_line_py_solc_x_parses():
    result = run_cli("--version")
    assert result.returncode == 0
    assert "Version: 0.8.28+commit.7893614a" in result.stdout


def test_standard_json_compiles_and_resolves_imports_against_base_path(tmp_path: Path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "B.sol").write_text(
        "pragma solidity 0.8.28; library B { function one() internal pure returns (uint) { return 1; } }"
    )
    src = (
        'pragma solidity 0.8.28; import "lib/B.sol"; '
        "contract A { function f() external pure returns (uint) { return B.one(); } }"
    )
    result = run_cli("--standard-json", "--base-path", str(tmp_path), stdin=standard_input(src))
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert not [e for e in out.get("errors", []) if e["severity"] == "error"]
    assert out["contracts"]["src/A.sol"]["A"]["evm"]["bytecode"]["object"]


def test_include_path_resolves_imports(tmp_path: Path):
    base, inc = tmp_path / "base", tmp_path / "inc"
    base.mkdir()
    (inc / "pkg").mkdir(parents=True)
    (inc / "pkg" / "C.sol").write_text("pragma solidity 0.8.28; contract C {}")
    src = 'pragma solidity 0.8.28; import "pkg/C.sol"; contract A is C {}'
    result = run_cli("--standard-json", f"--base-path={base}", "--include-path", str(inc), stdin=standard_input(src))
    out = json.loads(result.stdout)
    assert "A" in out["contracts"]["src/A.sol"]


def test_import_outside_allowed_roots_is_refused(tmp_path: Path):
    secret = tmp_path / "outside.sol"
    secret.write_text("pragma solidity 0.8.28; contract S {}")
    base = tmp_path / "base"
    base.mkdir()
    src = f'pragma solidity 0.8.28; import "{secret}"; contract A {{}}'
    out = json.loads(run_cli("--standard-json", "--base-path", str(base), stdin=standard_input(src)).stdout)
    errors = [e for e in out["errors"] if e["severity"] == "error"]
    assert errors and "not found" in errors[0]["message"]


def test_traversal_out_of_base_path_is_refused(tmp_path: Path):
    base = tmp_path / "base"
    base.mkdir()
    (tmp_path / "x.sol").write_text("pragma solidity 0.8.28; contract X {}")
    src = 'pragma solidity 0.8.28; import "../x.sol"; contract A {}'
    out = json.loads(run_cli("--standard-json", "--base-path", str(base), stdin=standard_input(src)).stdout)
    assert any("not found" in e["message"] for e in out["errors"] if e["severity"] == "error")


def test_compile_error_reports_file_and_line():
    src = "pragma solidity 0.8.28;\ncontract A {\n  function f() external { uint x = ; }\n}\n"
    out = json.loads(run_cli("--standard-json", stdin=standard_input(src)).stdout)
    error = next(e for e in out["errors"] if e["severity"] == "error")
    assert error["type"] == "ParserError"
    assert "src/A.sol:3:" in error["formattedMessage"]


def test_malformed_json_gets_a_json_error_like_native_solc():
    result = run_cli("--standard-json", stdin="{not json")
    assert result.returncode == 0
    out = json.loads(result.stdout)
    assert out["errors"][0]["type"] == "JSONError"


@pytest.mark.parametrize("args", [["--bin", "x.sol"], ["--optimize"], []])
def test_unsupported_arguments_exit_2_with_a_message(args: list[str]):
    result = run_cli(*args)
    assert result.returncode == 2
    assert "solc-js wrapper:" in result.stderr


def test_large_output_is_not_truncated_on_a_pipe():
    # Many contracts with big ASTs: the output runs to megabytes, far past a pipe buffer.
    body = "".join(
        f"contract C{i} {{ function f(uint a) external pure returns (uint) {{ return a * {i} + {i}; }} }}\n"
        for i in range(200)
    )
    settings = {"outputSelection": {"*": {"*": ["abi", "evm.bytecode", "evm.deployedBytecode"], "": ["ast"]}}}
    result = run_cli("--standard-json", stdin=standard_input("pragma solidity 0.8.28;\n" + body, **settings))
    assert len(result.stdout) > 1_000_000
    out = json.loads(result.stdout)
    assert len(out["contracts"]["src/A.sol"]) == 200
