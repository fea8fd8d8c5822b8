"""`proofmint cid` and `proofmint store …` (agents/app/store_cli.py)."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from agents.app.main import cli
from agents.app.store_cli import cid_command, store_group
from agents.storage.cid import RAW, Cid
from agents.storage.store import LocalStore
from agents.storage.unixfs import CHUNK_SIZE
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


MISSING_CID = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"  # the empty file's CID


PROOFMINT = Path(sys.executable).parent / "proofmint"  # the console script of this venv: what operators run


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    env = {name: value for name, value in os.environ.items() if name != "PROOFMINT_STORE"}
    return subprocess.run([str(PROOFMINT), *args], cwd=cwd, env=env, capture_output=True, timeout=60, check=False)


def _wide_help(command: click.Command) -> str:
    """The help as printed, on one long line per paragraph (click wraps at hyphens otherwise)."""
    with click.Context(command, info_name=command.name, terminal_width=1000, max_content_width=1000) as context:
        return command.get_help(context)


def test_store_add_prints_the_cid_its_help_says_and_cid_version_0_gives_kubos_default(tmp_path: Path):
    source = tmp_path / "hello.txt"
    source.write_bytes(b"hello world\n")
    runner = CliRunner(mix_stderr=False)
    store = ["--store", str(tmp_path / "store")]

    def out(*args: str) -> str:
        result = runner.invoke(cli, list(args))
        assert result.exit_code == 0, result.stderr
        return result.stdout

    assert out("store", "add", *store, str(source)) == out("cid", "--cid-version", "1", str(source))
    assert out("store", "add", *store, "--cid-version", "0", str(source)) == out("cid", str(source))
    add_help = _wide_help(store_group.commands["add"])
    assert "CIDv1" in add_help and "`proofmint cid --cid-version 1 FILE`" in add_help
    assert "`--cid-version 0`" in add_help and "plain `proofmint cid FILE`" in add_help
    assert "`proofmint store add FILE`" in _wide_help(cid_command)


def test_export_car_to_dash_writes_only_the_car_to_standard_output(tmp_path: Path):
    source = tmp_path / "image.bin"
    source.write_bytes(os.urandom(300_000))
    added = _run(["store", "add", "--store", "store", str(source)], tmp_path)
    cid = added.stdout.decode().strip()
    assert _run(["store", "export-car", "--store", "store", "-o", "file.car", cid], tmp_path).returncode == 0
    piped = _run(["store", "export-car", "--store", "store", "-o", "-", cid], tmp_path)
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout == (tmp_path / "file.car").read_bytes()
    assert piped.stderr.decode().splitlines() == [f"standard output: {len(piped.stdout)} bytes, root {cid}"]
    assert not (tmp_path / "-").exists()
    (tmp_path / "piped.car").write_bytes(piped.stdout)
    assert reference_car(tmp_path / "piped.car")["roots"] == [cid]


def test_export_car_writes_into_a_named_pipe_and_leaves_it_a_pipe(tmp_path: Path):
    store = LocalStore(tmp_path / "store")
    cid = store.add_bytes(b"into a pipe\n")
    expected = io.BytesIO()
    store.export_car(cid, expected)
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    reader = os.open(pipe, os.O_RDONLY | os.O_NONBLOCK)  # so the writer's open does not wait
    try:
        result = CliRunner().invoke(cli, ["store", "export-car", "--store", str(store.root), "-o", str(pipe), str(cid)])
        assert result.exit_code == 0, result.output
        assert os.read(reader, 1 << 16) == expected.getvalue()
    finally:
        os.close(reader)
    assert stat.S_ISFIFO(pipe.stat().st_mode) and sorted(path.name for path in tmp_path.iterdir()) == ["pipe", "store"]


def test_cat_writes_several_files_one_after_another(tmp_path: Path):
    store = LocalStore(tmp_path / "store")
    first, second = os.urandom(300_000), b"second\n"
    cids = [str(store.add_bytes(first)), str(store.add_bytes(second, cid_version=0))]
    result = CliRunner(mix_stderr=False).invoke(cli, ["store", "cat", "--store", str(store.root), *cids, cids[0]])
    assert result.exit_code == 0, result.stderr
    assert result.stdout_bytes == first + second + first


@pytest.mark.parametrize("bad", [MISSING_CID, "QmNotACid"])
def test_cat_writes_nothing_when_any_cid_is_bad_or_missing(tmp_path: Path, bad: str):
    store = LocalStore(tmp_path / "store")
    cid = str(store.add_bytes(b"found\n"))
    result = _run(["store", "cat", "--store", "store", cid, bad], tmp_path)
    assert result.returncode == 2 and result.stdout == b""
    assert len(result.stderr.decode().splitlines()) == 1 and bad in result.stderr.decode()


def _damaged_store(tmp_path: Path, damage: str) -> str:
    """A store with a two-chunk file whose second leaf is deleted or overwritten; its root CID."""
    store = LocalStore(tmp_path / "store")
    data = os.urandom(CHUNK_SIZE + 10)
    cid = store.add_bytes(data)
    leaf = Cid.of(data[CHUNK_SIZE:], RAW)
    path = tmp_path / "store" / "blocks" / leaf.digest.hex()[:2] / leaf.digest.hex()
    if damage == "gone":
        path.unlink()
    else:
        path.write_bytes(b"not the leaf")
    return str(cid)


#: Hostile input and a hostile world: each is one line on standard error, exit status 2, no traceback.
#: {store} holds {cid} ("hello\n"); {file} is a readable file; {folder} an empty folder.
ONE_LINE_ERRORS = [
    pytest.param(
        ["export-car", "-o", "{tmp}/missing/dir/x.car", "{cid}"], "does not exist", id="export-folder-missing"
    ),
    pytest.param(["export-car", "-o", "{folder}", "{cid}"], "is a folder", id="export-out-is-a-folder"),
    pytest.param(["export-car", "-o", "", "{cid}"], "empty name", id="export-out-empty"),
    pytest.param(["export-car", "-o", "x.car", MISSING_CID], "no block", id="export-cid-unknown"),
    pytest.param(
        ["export-car", "--store", "{tmp}/nowhere", "-o", "x.car", "{cid}"], "no store at", id="export-no-store"
    ),
    pytest.param(
        ["add", "--store", "/proc/foo", "{file}"], "cannot create the store folder", id="add-store-cannot-be-made"
    ),
    pytest.param(["add", "--store", "{file}", "{file}"], "is a file, not a folder", id="add-store-is-a-file"),
    pytest.param(["add", "{tmp}/no-such-file"], "No such file", id="add-file-missing"),
    pytest.param(["add", "{folder}"], "is a folder", id="add-file-is-a-folder"),
    pytest.param(["add", ""], "empty name", id="add-file-empty-name"),
    pytest.param(["add", "/proc/self/mem"], "cannot read /proc/self/mem", id="add-file-unreadable-device"),
    pytest.param(["cid", "{tmp}/no-such-file"], "No such file", id="cid-file-missing"),
    pytest.param(["cid", "{folder}"], "is a folder", id="cid-file-is-a-folder"),
    pytest.param(["cid", "/proc/self/mem"], "cannot read /proc/self/mem", id="cid-file-unreadable-device"),
    pytest.param(["cat", "QmNotACid"], "46 base58", id="cat-cid-malformed"),
    pytest.param(["cat", ""], "empty CID", id="cat-cid-empty"),
    pytest.param(["cat", "Qm\nx"], "'Qm\\nx' is not a CID", id="cat-cid-with-a-newline"),
    pytest.param(["cat", "b" * 300], "longer than 128", id="cat-cid-too-long"),
    pytest.param(["cat", f"bafyrei{'a' * 52}"], "codec 0x71", id="cat-cid-foreign-codec"),
    pytest.param(["cat", MISSING_CID], "no block", id="cat-cid-unknown"),
    pytest.param(["cat", "--store", "{tmp}/nowhere", "{cid}"], "no store at", id="cat-no-store"),
]


@pytest.mark.parametrize(("args", "message"), ONE_LINE_ERRORS)
def test_bad_input_is_one_line_and_no_traceback(tmp_path: Path, args: list[str], message: str):
    if "/proc/self/mem" in args and not Path("/proc/self/mem").exists():
        pytest.skip("needs Linux /proc")
    store = LocalStore(tmp_path / "store")
    names = {
        "tmp": str(tmp_path),
        "store": str(store.root),
        "cid": str(store.add_bytes(b"hello\n")),
        "file": str(tmp_path / "file.txt"),
        "folder": str(tmp_path / "folder"),
    }
    (tmp_path / "file.txt").write_bytes(b"a file\n")
    (tmp_path / "folder").mkdir()
    command = [arg.format(**names) for arg in args]
    if command[0] != "cid":
        store_given = [] if "--store" in command else ["--store", names["store"]]
        command = ["store", command[0], *store_given, *command[1:]]
    result = _run(command, tmp_path)
    _assert_one_line_error(result, message)
    assert result.stdout == b""


@pytest.mark.parametrize(("damage", "message"), [("gone", "holds only part of the file"), ("changed", "does not hash")])
def test_cat_of_a_damaged_store_is_one_line(tmp_path: Path, damage: str, message: str):
    cid = _damaged_store(tmp_path, damage)
    _assert_one_line_error(_run(["store", "cat", "--store", "store", cid], tmp_path), message)
    _assert_one_line_error(_run(["store", "export-car", "--store", "store", "-o", "x.car", cid], tmp_path), message)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["store"]  # no partial CAR left behind


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads whatever it likes")
def test_unreadable_file_is_one_line(tmp_path: Path):
    source = tmp_path / "file.txt"
    source.write_bytes(b"a file\n")
    source.chmod(0)
    _assert_one_line_error(_run(["store", "add", "--store", "store", "file.txt"], tmp_path), "cannot read file.txt")


def test_store_that_cannot_take_a_block_is_one_line(tmp_path: Path):
    data = b"a file\n"
    (tmp_path / "file.txt").write_bytes(data)
    LocalStore(tmp_path / "store").create()
    (tmp_path / "store" / "blocks" / Cid.of(data, RAW).digest.hex()[:2]).write_bytes(b"")  # where a folder goes
    result = _run(["store", "add", "--store", "store", "file.txt"], tmp_path)
    _assert_one_line_error(result, "cannot write to the store store: File exists")


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("store add --store store - <&-", "standard input is closed"),
        ("store cat --store store {cid} >&-", "standard output is closed"),
        ("store export-car --store store -o - {cid} >&-", "standard output is closed"),
    ],
)
def test_closed_standard_streams_are_one_line(tmp_path: Path, command: str, message: str):
    cid = LocalStore(tmp_path / "store").add_bytes(b"hello\n")
    shell = f'exec "$0" {command.format(cid=cid)}'
    result = subprocess.run(["sh", "-c", shell, str(PROOFMINT)], cwd=tmp_path, capture_output=True, timeout=60)
    _assert_one_line_error(result, message)


def _assert_one_line_error(result: subprocess.CompletedProcess[bytes], message: str) -> None:
    stderr = result.stderr.decode(errors="replace")
    assert result.returncode == 2, stderr
    assert "Traceback" not in stderr
    assert len(stderr.splitlines()) == 1 and stderr.startswith("Error: "), stderr
    assert message in stderr
