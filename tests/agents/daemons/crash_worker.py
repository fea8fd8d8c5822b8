"""One life of the whole pipeline for the crash test: `python crash_worker.py CONFIG.json`.

Connects to the node in the config, runs every daemon over the journal in the config's state
folder, prints `ready` once the daemons are running and `done` when every job is final."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from web3 import HTTPProvider, Web3  # noqa: E402

from agents.daemons.local import build_agents, build_head_circuits, open_parts  # noqa: E402
from agents.daemons.runner import all_final  # noqa: E402


async def main(config: dict[str, object]) -> None:
    web3 = Web3(HTTPProvider(str(config["rpc"]), exception_retry_configuration=None))
    heads = {int(size): int(model_id) for size, model_id in dict(config["heads"]).items()}  # type: ignore[call-overload]
    circuits = build_head_circuits(Path(str(config["cache"])), sorted(heads))
    parts = await open_parts(
        ROOT,
        Path(str(config["state"])),
        web3=web3,
        key=str(config["key"]),
        addresses=dict(config["addresses"]),  # type: ignore[call-overload]
        t2i_model_id=int(config["t2i"]),  # type: ignore[call-overload]
        head_models={size: (circuits[size], model_id) for size, model_id in heads.items()},
        sender_poll=0.02,
    )
    agents = build_agents(
        parts, worker="crashy", generate_batch=4, register_batch=4, linger_s=0.3, idle=0.05, withdraw_every_s=None
    )
    await agents.start()
    print("ready", flush=True)
    try:
        await agents.until(all_final(), within_s=900)
    finally:
        await agents.stop()
        parts.close()
    print("done", flush=True)


if __name__ == "__main__":
    asyncio.run(main(json.loads(Path(sys.argv[1]).read_text())))
