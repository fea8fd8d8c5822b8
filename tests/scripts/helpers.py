"""What the ape-script tests share: a real anvil of their own, `ape run` as a process of its own
(the way an operator runs it; forked from a warm ape that imported ape once, `WarmApe`), and
web3.py shortcuts for the set-up a test needs before the script under test runs (faster than
another `ape run`, and not what is being tested)."""

from __future__ import annotations

import atexit
import functools
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from eth_account import Account
from web3 import HTTPProvider, Web3

from agents.core.merkle import AssetRecord

ROOT = Path(__file__).resolve().parents[2]
MNEMONIC = "test test test test test test test test test test test junk"
ETH = "0x0000000000000000000000000000000000000000"
GWEI = 10**9

Account.enable_unaudited_hdwallet_features()


def key_of(index: int) -> Any:
    return Account.from_mnemonic(MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Anvil:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        anvil = ROOT / "node_modules" / ".bin" / "anvil"
        self.process = subprocess.Popen(
            [str(anvil), "--port", str(self.port), "--silent"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.web3 = Web3(HTTPProvider(self.url))
        deadline = time.monotonic() + 30
        while not self.web3.is_connected():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("anvil did not start")
            time.sleep(0.1)
        self.record = ROOT / ".cache" / "deployments" / f"http_127.0.0.1_{self.port}.json"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        self.record.unlink(missing_ok=True)


class WarmApe:
    """`ape` runs forked from a server that imported ape once (`tests.scripts.ape_server`): each is
    a process of its own, as typed, in the environment it is given, without the imports every
    new interpreter repeats."""

    def __init__(self, env: dict[str, str]) -> None:
        self.lock = threading.Lock()
        self.folder = Path(tempfile.mkdtemp(prefix="proofmint-ape-runs-"))
        self.process = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "python"), "-m", "tests.scripts.ape_server"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,
        )
        self.pending = b""
        self._answer("ready", timeout=120)

    def _answer(self, key: str, timeout: float) -> Any:
        """The next line the server writes, read from its pipe unbuffered (its pid and status
        lines can come in one read: a line left in a reader's buffer would never wake select)."""
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while b"\n" not in self.pending:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.process.stdout], [], [], max(left, 0))
            if not ready:
                raise subprocess.TimeoutExpired("ape", timeout)
            chunk = os.read(self.process.stdout.fileno(), 65536)
            if not chunk:
                raise RuntimeError("the ape server ended")
            self.pending += chunk
        line, self.pending = self.pending.split(b"\n", 1)
        return json.loads(line)[key]

    def run(self, args: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
        with self.lock:
            out, err = self.folder / "stdout", self.folder / "stderr"
            request = {"args": args, "cwd": str(ROOT), "env": env, "stdout": str(out), "stderr": str(err)}
            assert self.process.stdin is not None
            data = memoryview(json.dumps(request).encode() + b"\n")
            while data:  # an unbuffered pipe may take part of it
                data = data[os.write(self.process.stdin.fileno(), data) :]
            pid = self._answer("pid", timeout=30)
            try:
                code = self._answer("rc", timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(pid, signal.SIGKILL)
                self._answer("rc", timeout=30)
                raise
            return subprocess.CompletedProcess(["ape", *args], code, out.read_text(), err.read_text())

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=30)
        shutil.rmtree(self.folder, ignore_errors=True)


def _environment(env: dict[str, str] | None) -> dict[str, str]:
    environment = dict(os.environ if env is None else env)
    environment["PATH"] = f"{ROOT / '.venv' / 'bin'}:{ROOT / 'node_modules' / '.bin'}:{environment['PATH']}"
    return environment


@functools.cache
def _warm_ape() -> WarmApe:
    """One warm ape for the test process, started by the first run, stopped at exit."""
    server = WarmApe(_environment(None))
    atexit.register(server.stop)
    return server


def ape(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`ape run ARGS` in the project, as typed (no --network added); never a Python traceback.
    In the test process's own environment (as it is at the call) it is forked from the warm ape
    (`WarmApe`); with another `env`, a new interpreter."""
    if env is None:
        result = _warm_ape().run(["run", *args], _environment(None), timeout=180)
    else:
        result = subprocess.run(
            [str(ROOT / ".venv" / "bin" / "ape"), "run", *args],
            cwd=ROOT,
            env=_environment(env),
            capture_output=True,
            text=True,
            timeout=180,
        )
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    return result


def ape_run(node: Anvil, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`ape run ARGS --network <the node>`; with `check`, it must succeed."""
    result = ape(*args, "--network", node.url)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The one line a failed script printed on stderr (asserted: failed, one line, no stack)."""
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert 'File "' not in output, output  # ape's own stack dump says File "..." but not Traceback
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), output
    return lines[0]


def abi_of(project: Any, name: str) -> list[dict[str, Any]]:
    return [item.model_dump(mode="json", by_alias=True) for item in getattr(project, name).contract_type.abi]


def contract(node: Anvil, project: Any, name: str) -> Any:
    record = json.loads(node.record.read_text())
    address = next(c["address"] for c in record["contracts"] if c["name"] == name)
    return node.web3.eth.contract(address=address, abi=abi_of(project, name))


def send(node: Anvil, signer_index: int, fn: Any, value: int = 0) -> Any:
    signer = key_of(signer_index)
    tx = fn.build_transaction(
        {"from": signer.address, "nonce": node.web3.eth.get_transaction_count(signer.address), "value": value}
    )
    signed = signer.sign_transaction(tx)
    receipt = node.web3.eth.wait_for_transaction_receipt(node.web3.eth.send_raw_transaction(signed.raw_transaction))
    assert receipt.status == 1
    return receipt


def deploy(node: Anvil, project: Any, signer_index: int, name: str, *args: Any) -> Any:
    """Deploy one of the project's contracts (a test token, a test wallet) with web3.py."""
    container = getattr(project, name)
    bytecode = container.contract_type.deployment_bytecode.bytecode
    factory = node.web3.eth.contract(abi=abi_of(project, name), bytecode=bytecode)
    receipt = send(node, signer_index, factory.constructor(*args))
    return node.web3.eth.contract(address=receipt.contractAddress, abi=abi_of(project, name))


def register_asset(node: Anvil, project: Any, creator_index: int, digest: bytes) -> bytes:
    """A registered asset with content digest `digest` by test account `creator_index` (and the
    model version it names, registered by test:1 when there is none yet); its asset id."""
    models = contract(node, project, "ModelRegistry")
    if models.functions.modelCount().call() == 0:
        model = (b"\x44" * 32, b"\x00" * 32, b"\x00" * 32, 0, 1000, 0, "ipfs://m")
        send(node, 1, models.functions.registerModel(model))
    record = AssetRecord(digest, key_of(creator_index).address, 1, b"\x01" * 32, b"\x02" * 32, (), "ipfs://asset")
    send(node, creator_index, contract(node, project, "ProvenanceRegistry").functions.register(record.as_tuple(), []))
    return digest


def attach_terms(
    node: Anvil,
    project: Any,
    creator_index: int,
    asset: bytes,
    *,
    currency: str = ETH,
    price: int = 0,
    per_use: int = 0,
    duration: int = 0,
) -> int:
    """Attach licence terms with web3.py; their id."""
    licenses = contract(node, project, "LicenseManager")
    terms = (currency, price, per_use, duration, 0, True, False)
    send(node, creator_index, licenses.functions.attachTerms(asset, terms))
    return int(licenses.functions.termsCount().call())
