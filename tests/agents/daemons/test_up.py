"""`proofmint up` as a user runs it: every daemon and the HTTP API in one process on the embedded
chain. A request POSTed to the API becomes an attested asset that the API lists, and Ctrl-C
(SIGINT to the whole process group, as a terminal sends it) stops everything cleanly: exit 0,
no traceback from the worker processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from agents.core.toolchain import project_root
from tests.agents.daemons.helpers import call, rpc_chain_id, wait_for
from tests.agents.runtime.anvil import free_port

pytestmark = pytest.mark.slow

PROMPT = "a small magenta circle in the centre over a plain black background"


@pytest.mark.parametrize("network", ["ethereum:local:test", "ethereum:local:foundry"])
def test_proofmint_up_serves_the_api_and_stops_cleanly_on_ctrl_c(tmp_path: Path, network: str):
    """On the embedded chain, and on an anvil of its own whose RPC it tells wallets (that node
    outlives the Ctrl-C until the agents have finished, then goes with them)."""
    api, metrics = free_port(), free_port()
    binary = Path(sys.executable).with_name("proofmint")
    log = tmp_path / "up.log"
    prompts = tmp_path / "prompts.txt"
    prompts.write_text(f"\n{PROMPT}\n", encoding="utf8")  # line 2: seed 1
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                str(binary),
                "up",
                "--state",
                str(tmp_path / "state"),
                "--api-port",
                str(api),
                "--metrics-port",
                str(metrics),
                "--network",
                network,
                "--prompts",
                str(prompts),
            ],
            cwd=project_root(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as in a terminal
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )
        try:
            base = f"http://127.0.0.1:{api}"
            wait_for(lambda: call(f"{base}/health")[0] == 200, 300, process)
            rpc = call(f"{base}/v1/deployment")[1]["rpcUrl"]
            if network == "ethereum:local:test":
                assert rpc is None  # no RPC a browser wallet could reach
            else:
                assert rpc_chain_id(rpc) == 31337
            status, body = call(f"{base}/v1/requests", {"prompt": PROMPT, "seed": 3})
            assert status == 202, body
            key = body["key"]
            # the prompts file's job: its key printed, findable by it and by its requester (the operator)
            (line,) = [x for x in log.read_text(errors="replace").splitlines() if x.startswith("job req-")]
            queued = line.split()[1].rstrip(":")
            wait_for(lambda: call(f"{base}/v1/requests/{key}")[1]["stage"] == "attested", 300, process)
            wait_for(lambda: call(f"{base}/v1/requests/{queued}")[1]["stage"] == "attested", 300, process)
            status, mine = call(f"{base}/v1/requests?requester={call(f'{base}/v1/requests/{queued}')[1]['requester']}")
            assert status == 200 and [i["key"] for i in mine["items"]] == [queued] and mine["items"][0]["seed"] == 1
            _, listed = call(f"{base}/v1/assets")
            assert sorted(a["requester"] == "api" for a in listed["items"]) == [False, True]
            (asset,) = [a for a in listed["items"] if a["requester"] == "api"]
            assert asset["prompt"] == PROMPT and asset["zk"]["status"] == "attested"
            assert asset["creator"]
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
