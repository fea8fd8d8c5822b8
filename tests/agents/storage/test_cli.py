"""`proofmint cid` and `proofmint store …` (agents/app/store_cli.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from agents.app.main import cli
from tests.agents.storage.reference import reference_car, reference_cid


def test_cid_prints_what_ipfs_add_quiet_prints(tmp_path: Path):
    path = tmp_path / "hello.txt"
    path.write_bytes(b"hello world\n")
    runner = CliRunner()
    assert runner.invoke(cli, ["cid", str(path)]).output == "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o\n"
    result = runner.invoke(cli, ["cid", "--cid-version", "1", str(path)])
    assert result.output == "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4\n"


def test_cid_reads_standard_input_through_the_console_script(tmp_path: Path):
    data = os.urandom(600_000)
    path = tmp_path / "blob"
    path.write_bytes(data)
    proofmint = Path(sys.executable).parent / "proofmint"  # the console script of this venv
    result = subprocess.run(
        [str(proofmint), "cid", "--cid-version", "1", "-"], input=data, capture_output=True, check=True, timeout=60
    )
    assert result.stdout.decode().strip() == reference_cid(path, 1)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["cid", "/nonexistent/file"], "No such file"),
        (["cid", "--cid-version", "2", "x"], "'2' is not one of"),
        (["store", "cat", "QmNotACid"], "46 base58"),
        (["store", "cat", "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"], "no block"),
    ],
)
def test_bad_input_is_a_clear_error(tmp_path: Path, args: list[str], message: str):
    store = ["--store", str(tmp_path)] if args[0] == "store" else []
    result = CliRunner().invoke(cli, [*args[:2], *store, *args[2:]])
    assert result.exit_code != 0
    assert message in result.output + str(result.exception)


def test_cid_refuses_a_folder(tmp_path: Path):
    result = CliRunner().invoke(cli, ["cid", str(tmp_path)])
    assert result.exit_code == 2 and "folder" in result.output


def test_store_add_cat_and_export_car(tmp_path: Path):
    data = os.urandom(300_000)
    source = tmp_path / "image.bin"
    source.write_bytes(data)
    store = ["--store", str(tmp_path / "store")]
    runner = CliRunner()
    added = runner.invoke(cli, ["store", "add", *store, str(source)])
    assert added.exit_code == 0, added.output
    cid = added.output.strip()
    assert cid == reference_cid(source, 1)
    assert runner.invoke(cli, ["store", "cat", *store, cid]).stdout_bytes == data
    car = tmp_path / "out.car"
    exported = runner.invoke(cli, ["store", "export-car", *store, "-o", str(car), cid])
    assert exported.exit_code == 0, exported.output
    assert reference_car(car)["roots"] == [cid]
