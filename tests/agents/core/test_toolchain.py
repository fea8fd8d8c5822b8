"""agents.core.toolchain: finding Node.js, solc, OpenZeppelin and anvil, and saying what is missing."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from agents.core import toolchain
from agents.core.errors import PermanentError, ProofmintError, ToolchainError

ROOT = Path(__file__).resolve().parents[3]


def test_parse_solc_version_native_and_solcjs_lines():
    native = "solc, the solidity compiler commandline interface\nVersion: 0.8.28+commit.7893614a.Linux.g++\n"
    js = "Version: 0.8.28+commit.7893614a.Emscripten.clang\n"
    assert toolchain.parse_solc_version(native) == ("0.8.28", "7893614a")
    assert toolchain.parse_solc_version(js) == ("0.8.28", "7893614a")
    assert toolchain.parse_solc_version("solc 0.8.28") is None
    assert toolchain.parse_solc_version("") is None


def test_project_root_is_the_checkout():
    assert toolchain.project_root() == ROOT


def test_installed_toolchain_is_all_ok():
    statuses = {s.name: s for s in toolchain.check_all(ROOT)}
    assert set(statuses) == {"node", "solc", "openzeppelin", "anvil"}
    assert all(s.ok for s in statuses.values()), statuses
    assert "0.8.28+commit.7893614a" in statuses["solc"].detail
    assert statuses["openzeppelin"].detail.startswith("5.")


def test_missing_node_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("PATH", str(tmp_path))
    status = toolchain.check_node()
    assert not status.ok
    assert "install Node.js" in status.hint


def test_missing_solc_points_to_setup(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("SOLCX_BINARY_PATH", str(tmp_path))
    status = toolchain.check_solc(ROOT)
    assert not status.ok
    assert "make setup" in status.hint


def test_wrong_solc_version_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    fake = tmp_path / "solc-v0.8.28"
    fake.write_text("#!/bin/sh\necho 'Version: 0.8.19+commit.7dd6d404.Linux.g++'\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("SOLCX_BINARY_PATH", str(tmp_path))
    status = toolchain.check_solc(ROOT)
    assert not status.ok
    assert "0.8.19" in status.detail


def test_missing_openzeppelin_points_to_npm_ci(tmp_path: Path):
    status = toolchain.check_openzeppelin(tmp_path)
    assert not status.ok and "npm ci" in status.hint


def test_missing_anvil_points_to_npm_ci(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("PATH", os.defpath.replace("/usr/local/bin", str(tmp_path)))
    status = toolchain.check_anvil(tmp_path)
    assert not status.ok and "npm ci" in status.hint


def test_toolchain_error_is_catchable_as_root_and_builtin():
    err = ToolchainError("x")
    assert isinstance(err, ProofmintError)
    assert isinstance(err, PermanentError)
    assert isinstance(err, RuntimeError)
