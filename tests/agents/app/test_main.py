"""The `proofmint` console script."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from agents import __version__
from agents.app.main import cli

ROOT = Path(__file__).resolve().parents[3]


def test_help_lists_commands():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert "doctor" in result.output


def test_version():
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_doctor_passes_on_this_machine():
    result = CliRunner().invoke(cli, ["doctor"])
    assert result.exit_code == 0, result.output
    for name in ("node", "solc", "openzeppelin", "anvil"):
        assert name in result.output


def test_doctor_fails_and_says_what_to_install_when_solc_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("SOLCX_BINARY_PATH", str(tmp_path))
    result = CliRunner().invoke(cli, ["doctor"])
    assert result.exit_code == 1
    assert "MISSING" in result.output
    assert "make setup" in result.output


def test_unknown_command_is_a_usage_error():
    result = CliRunner().invoke(cli, ["frobnicate"])
    assert result.exit_code == 2
    assert "No such command" in result.output


def test_console_script_is_installed():
    exe = Path(sys.executable).parent / "proofmint"
    result = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0
    assert "proofmint" in result.stdout
