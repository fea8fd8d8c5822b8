"""`proofmint up` as a user runs it: every daemon and the HTTP API in one process, started from
a folder that is not the repository. A request POSTed to the API and one from `--prompts`
become attested assets that the API lists and finds by key and by requester, and Ctrl-C (SIGINT
to the whole process group, as a terminal sends it) stops everything cleanly: exit 0, no
traceback from the worker processes.

With `--rpc-port` the other tools work on the same chain: `ape run license attach --network
RPC` finds `up`'s deployment record, and `proofmint pay` buys a use of the asset with the
development payer that `up` funded; the record goes when `up` ends."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agents.core.toolchain import project_root
from tests.agents.daemons.helpers import call, rpc_chain_id, wait_for
from tests.agents.runtime.anvil import free_port

pytestmark = pytest.mark.slow

PROMPT = "a small magenta circle in the centre over a plain black background"
BIN = Path(sys.executable).parent
#: ape's test account 5, which `up` funds with escrow on its anvil (a well-known development key)
PAYER_KEY = "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba"


def _attach_and_pay(base: str, rpc: str, digest: str, tmp_path: Path) -> None:
    """What the closing transcript shows: terms attached with an ape script, then paid fetches."""
    attach = subprocess.run(
        [str(BIN / "ape"), "run", "license", "attach", "--network", rpc, "--asset", digest, "--price-per-use", "1000"],
        cwd=project_root(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert attach.returncode == 0, attach.stdout[-2000:] + attach.stderr[-2000:]
    url = f"{base}/v1/assets/{digest}/content"
    env = {**os.environ, "PROOFMINT_PAYER_KEY": PAYER_KEY}
    for cumulative, out in ((1000, "first.png"), (2000, "second.png")):  # a new process: the channel resumes
        paid = subprocess.run(
            [str(BIN / "proofmint"), "pay", url, "-o", out], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert paid.returncode == 0, paid.stderr[-2000:]
        assert "paid 1000 wei" in paid.stderr and f"{cumulative} wei on this channel so far" in paid.stderr
        assert "0x" + hashlib.sha256((tmp_path / out).read_bytes()).hexdigest() == digest
    refused = subprocess.run(
        [str(BIN / "proofmint"), "pay", url], cwd=tmp_path, env={**os.environ, "PROOFMINT_PAYER_KEY": ""},
        capture_output=True, text=True,
    )  # fmt: skip
    assert refused.returncode == 2 and "set $PROOFMINT_PAYER_KEY" in refused.stderr


def _stock_x402_client_pays_in_dollars(base: str, rpc: str, digest: str) -> None:
    """The `x402` package's HTTP client pays a view with `exact` (an EIP-3009 transfer of the
    development dollar that `up` deployed and minted to its accounts), after terms priced in it
    are attached with the ape script."""
    from eth_account import Account
    from web3 import HTTPProvider, Web3
    from x402 import x402ClientSync
    from x402.http.clients import x402_requests
    from x402.mechanisms.evm.exact.client import ExactEvmScheme

    contracts = call(f"{base}/v1/deployment")[1]["contracts"]
    assert "DevUsd" in contracts, "up lists its development dollar"
    usd = contracts["DevUsd"]["address"]
    attach = subprocess.run(
        [str(BIN / "ape"), "run", "license", "attach", "--network", rpc, "--asset", digest, "--currency", usd,
         "--price-per-use", "0.01 token"],
        cwd=project_root(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert attach.returncode == 0, attach.stdout[-2000:] + attach.stderr[-2000:]
    client = x402ClientSync().register("eip155:*", ExactEvmScheme(Account.from_key(PAYER_KEY)))
    allowed = {"network": f"eip155:{rpc_chain_id(rpc)}", "asset": usd, "max_amount_per_payment": "10000"}
    client.set_spend_controls({"allowed_assets": [allowed]})  # type: ignore[typeddict-item]
    response = x402_requests(client).get(f"{base}/v1/assets/{digest}/content", timeout=120)
    assert response.status_code == 200, response.text[:1000]
    assert "0x" + hashlib.sha256(response.content).hexdigest() == digest
    web3 = Web3(HTTPProvider(rpc))
    transfer = web3.eth.get_transaction_receipt(
        json.loads(base64.b64decode(response.headers["PAYMENT-RESPONSE"]))["transaction"]
    )
    assert transfer["status"] == 1


def _agent_api_finds_the_deployment(base: str, rpc: str, tmp_path: Path) -> None:
    """`proofmint agent api --rpc RPC` beside `up`, with no --deployment: it reads up's record."""
    mine = call(f"{base}/v1/deployment")[1]
    port = free_port()
    command = [str(BIN / "proofmint"), "agent", "api", "--rpc", rpc, "--api-port", str(port)]
    command += ["--service", mine["service"], "--state", str(tmp_path / "api-state")]
    with (tmp_path / "api.log").open("wb") as out:
        api = subprocess.Popen(command, cwd=project_root(), stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: call(f"http://127.0.0.1:{port}/health")[0] == 200, 120, api)
            theirs = call(f"http://127.0.0.1:{port}/v1/deployment")[1]
            assert {k: v["address"] for k, v in theirs["contracts"].items()} == {
                k: v["address"] for k, v in mine["contracts"].items()
            }
            # its client's key is a throwaway that pays no gas: it offers vouchers, not exact
            kinds = call(f"http://127.0.0.1:{port}/v1/x402/supported")[1]["kinds"]
            assert [k["scheme"] for k in kinds] == ["proofmint-voucher"]
            assert [k["scheme"] for k in call(f"{base}/v1/x402/supported")[1]["kinds"]] == [
                "proofmint-voucher",
                "exact",
            ]
        finally:
            api.terminate()
            api.wait(timeout=60)


def _erc8004_agents_and_validation(base: str, rpc: str | None, digest: str, up: subprocess.Popen[bytes]) -> None:
    """up registered the operator's agents in ERC-8004 registries it deployed: each agentURI is
    this API's registration file, and the endpoint domain lists all three. With an RPC, the
    prover's validation request covering the asset is answered 100 on chain."""
    status, domain = call(f"{base}/.well-known/agent-registration.json")
    assert status == 200 and len(domain["registrations"]) == 3, domain
    _, index = call(f"{base}/v1/agents")
    for agent in index["agents"]:
        assert agent["agentURI"].startswith(base + "/v1/agents/")
        status, card = call(agent["agentURI"])
        assert status == 200 and card["registrations"] == [
            {"agentId": agent["agentId"], "agentRegistry": index["agentRegistry"]}
        ]
    if rpc is None:
        return
    from web3 import HTTPProvider, Web3

    contracts = call(f"{base}/v1/deployment")[1]["contracts"]
    web3 = Web3(HTTPProvider(rpc))
    registry = web3.eth.contract(
        address=contracts["ValidationRegistry"]["address"], abi=contracts["ValidationRegistry"]["abi"]
    )
    (prover,) = [a["agentId"] for a in index["agents"] if a["role"] == "prover"]

    def covering() -> list[dict[str, Any]]:
        found = []
        for request_hash in registry.functions.getAgentValidations(prover).call():
            status, record = call(f"{base}/v1/validations/0x{bytes(request_hash).hex()}")
            assert status == 200, record
            if record["state"] != "answered":  # the response is a transaction of its own, a moment later
                continue
            assert record["response"] == 100, record
            found += [record for item in record["items"] if item["asset"] == digest]
        return found

    wait_for(lambda: len(covering()) > 0, 60, up)  # the prover gathers chunks for up to 5 s
    assert len(covering()) == 1, "one validation covers the asset"


@pytest.mark.parametrize(
    "rpc_port",
    [None, pytest.param("free", marks=pytest.mark.anvil)],  # its own anvil node: the anvil pass runs it
    ids=["embedded", "anvil"],
)
def test_proofmint_up_serves_the_api_and_stops_cleanly_on_ctrl_c(tmp_path: Path, rpc_port: str | None):
    """On the embedded chain, and on an anvil of its own whose RPC it tells wallets and the ape
    scripts (that node outlives the Ctrl-C until the agents have finished, then goes with it)."""
    api, metrics = free_port(), free_port()
    port = free_port() if rpc_port else None
    log = tmp_path / "up.log"
    (tmp_path / "prompts.txt").write_text(f"\n{PROMPT}\n", encoding="utf8")  # line 2: seed 1
    command = [str(BIN / "proofmint"), "up", "--state", "state", "--prompts", "prompts.txt"]
    command += ["--api-port", str(api), "--metrics-port", str(metrics)]
    if port:
        command += ["--rpc-port", str(port)]
    record = project_root() / ".cache" / "deployments" / f"http_127.0.0.1_{port}.json"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            cwd=tmp_path,  # not the repository: relative paths are the caller's, the project's files its own
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as in a terminal
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )
        try:
            base = f"http://127.0.0.1:{api}"
            wait_for(lambda: call(f"{base}/health")[0] == 200, 300, process)
            assert (tmp_path / "state" / "journal.db").is_file()
            rpc = call(f"{base}/v1/deployment")[1]["rpcUrl"]
            if port is None:
                assert rpc is None  # no RPC a browser wallet could reach
            else:
                assert rpc == f"http://127.0.0.1:{port}" and rpc_chain_id(rpc) == 31337
                assert record.is_file(), "the ape scripts find up's deployment"
            status, body = call(f"{base}/v1/requests", {"prompt": PROMPT, "seed": 3})
            assert status == 202, body
            key = body["key"]
            # moderation is on by default: a prompt with a blocked term is refused before any image is made
            status, body = call(f"{base}/v1/requests", {"prompt": "a naked magenta circle", "seed": 3})
            refused = body["key"]
            wait_for(lambda: call(f"{base}/v1/requests/{refused}")[1]["stage"] == "rejected", 120, process)
            reason = call(f"{base}/v1/requests/{refused}")[1]["reason"]
            assert reason == "moderation: the prompt contains the blocked term 'naked'"
            # the prompts file's job: its key printed, findable by it and by its requester (the operator)
            (line,) = [x for x in log.read_text(errors="replace").splitlines() if x.startswith("job req-")]
            queued = line.split()[1].rstrip(":")
            wait_for(lambda: call(f"{base}/v1/requests/{key}")[1]["stage"] == "attested", 300, process)
            wait_for(lambda: call(f"{base}/v1/requests/{queued}")[1]["stage"] == "attested", 300, process)
            requester = call(f"{base}/v1/requests/{queued}")[1]["requester"]
            status, mine = call(f"{base}/v1/requests?requester={requester}")
            assert status == 200 and [i["key"] for i in mine["items"]] == [queued] and mine["items"][0]["seed"] == 1
            _, listed = call(f"{base}/v1/assets")
            assert sorted(a["requester"] == "api" for a in listed["items"]) == [False, True]
            (asset,) = [a for a in listed["items"] if a["requester"] == "api"]
            assert asset["prompt"] == PROMPT and asset["zk"]["status"] == "attested"
            assert asset["creator"]
            _erc8004_agents_and_validation(base, rpc, asset["digest"], process)
            if rpc is not None:
                _attach_and_pay(base, rpc, asset["digest"], tmp_path)
                _stock_x402_client_pays_in_dollars(base, rpc, asset["digest"])
                _agent_api_finds_the_deployment(base, rpc, tmp_path)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGINT)
            code = process.wait(timeout=120)
    text = log.read_text(errors="replace")
    assert code == 0, text[-3000:]
    assert "Traceback" not in text, text[-3000:]
    assert "stopping: finishing the batches in hand" in text
    if rpc is not None:
        with pytest.raises(OSError):
            rpc_chain_id(rpc)  # the node went with it
        assert not record.exists(), "its deployment record went with it"
