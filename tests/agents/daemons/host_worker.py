"""One host of the two-host test: `python host_worker.py CONFIG.json`.

Runs the daemons the config names over what the hosts share (the PostgreSQL journal, Redis
wake-ups, the PostgreSQL block store, the chain) with a state folder of its own (the publisher's
signing identity, the curator's near-duplicate index), exactly as `proofmint agent NAME
--journal ... --redis ... --store ...` wires them, with crash_worker.py's torch-free generator and
curator (see there). Prints `ready` once its parts are open, then serves its daemons as
`proofmint agent` does (`agents.app.commands.serve_agents`) until SIGTERM (a graceful drain: exit
0) or SIGKILL.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from redis.asyncio import Redis  # noqa: E402

from agents.app.commands import serve_agents, stop_on_signals  # noqa: E402
from agents.app.wiring import build_agents, redis_queues  # noqa: E402
from agents.runtime.telemetry import json_logging  # noqa: E402
from tests.agents.daemons.crash_worker import open_procedural_parts  # noqa: E402


async def main(config: dict[str, object]) -> None:
    json_logging()  # to stderr: the test keeps each life's log in the host's folder
    names = [str(name) for name in config["names"]]  # type: ignore[attr-defined]
    parts, models = await open_procedural_parts(
        config, names=names, journal=str(config["journal"]), store=str(config["store"])
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
    stop = stop_on_signals()  # before `ready`: a SIGTERM right after it drains, never kills
    print("ready", flush=True)
    try:
        await serve_agents(agents, parts.metrics, None, stop=stop)  # what `proofmint agent` runs, until SIGTERM
    finally:
        parts.close()
        models.close()
        await redis.aclose()
    print("drained", flush=True)


if __name__ == "__main__":
    asyncio.run(main(json.loads(Path(sys.argv[1]).read_text())))
