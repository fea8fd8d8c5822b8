"""One host of the two-host test: `python host_worker.py CONFIG.json`.

Runs the daemons the config names over what the hosts share (the PostgreSQL journal, Redis
wake-ups, the PostgreSQL block store, the chain) with a state folder of its own (the publisher's
signing identity, the curator's near-duplicate index), exactly as `proofmint agent NAME
--journal ... --redis ... --store ...` wires them, with crash_worker.py's torch-free generator and
curator (see there). Prints `ready` once its stages run; runs until SIGTERM (a graceful drain:
exit 0) or SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from redis.asyncio import Redis  # noqa: E402
from web3 import HTTPProvider, Web3  # noqa: E402

from agents.app.wiring import Models, build_agents, open_parts, redis_queues  # noqa: E402
from agents.models.generator import Generator  # noqa: E402
from agents.runtime.telemetry import json_logging  # noqa: E402
from tests.agents.daemons.crash_worker import DigestCurator, ProceduralRunner, cached_circuits  # noqa: E402


async def main(config: dict[str, object]) -> None:
    json_logging()  # to stderr: the test keeps each life's log in the host's folder
    web3 = Web3(HTTPProvider(str(config["rpc"]), exception_retry_configuration=None))
    names = [str(name) for name in config["names"]]  # type: ignore[attr-defined]
    heads = {int(size): int(model_id) for size, model_id in dict(config["heads"]).items()}  # type: ignore[call-overload]
    circuits = cached_circuits(dict(config["circuits"]))  # type: ignore[call-overload]
    models = Models(generator=Generator(ProceduralRunner(), "procedural", batch=4), curator=DigestCurator())
    parts = await open_parts(
        ROOT,
        Path(str(config["state"])),
        web3=web3,
        key=str(config["key"]),
        addresses=dict(config["addresses"]),  # type: ignore[call-overload]
        t2i_model_id=int(config["t2i"]),  # type: ignore[call-overload]
        head_models={size: (circuits[size], model_id) for size, model_id in heads.items()},
        names=names,
        sender_poll=0.02,
        models=models,
        journal=str(config["journal"]),
        store=str(config["store"]),
    )
    redis = Redis.from_url(str(config["redis"]))
    agents = build_agents(
        parts,
        names=names,
        worker=str(config["worker"]),
        queues=redis_queues(redis),
        generate_batch=4,
        register_batch=4,
        linger_s=0.3,
        idle=0.05,
        withdraw_every_s=None,
        lease_s=float(config["lease_s"]),  # type: ignore[arg-type]
        lease_ttl_s=float(config["lease_ttl_s"]),  # type: ignore[arg-type]
    )
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await agents.start()
    print("ready", flush=True)
    try:
        while not stop.is_set():
            failures = agents.failed()
            if failures:
                raise failures[0]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.2)
    finally:
        await agents.stop()
        parts.close()
        models.close()
        await redis.aclose()
    print("drained", flush=True)


if __name__ == "__main__":
    asyncio.run(main(json.loads(Path(sys.argv[1]).read_text())))
