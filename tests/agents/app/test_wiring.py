"""The composition root's one stage table (agents/daemons/pipeline.py, agents/app/wiring.py):
every hand-off in it gets a wake-up queue, in process and across processes through Redis."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
from click.testing import CliRunner

from agents.app.main import cli
from agents.app.wiring import memory_queues, redis_queues
from agents.daemons.pipeline import DAEMONS, HANDOFFS, MANY, STAGES, stages_of
from agents.runtime import jobs


def test_every_inbox_of_the_table_has_a_wake_up_queue_in_process_and_on_redis():
    inboxes = {spec.inbox for spec in STAGES if spec.inbox is not None}
    assert inboxes == set(HANDOFFS) == set(memory_queues())
    assert jobs.DELIVERED in inboxes  # the prover's inbox (once missing from the Redis list)
    outboxes = {spec.outbox for spec in STAGES if spec.outbox is not None}
    assert outboxes <= inboxes, "every stage a stage hands on to has a taker"
    client = aioredis.from_url("redis://127.0.0.1:1/0")  # no connection is made until used
    assert set(redis_queues(client)) == inboxes


def test_the_table_gives_each_registration_mode_its_own_registrar_stages():
    many = [(s.name, s.outbox) for s in stages_of(["registrar"], MANY)]
    commit = [(s.name, s.outbox) for s in stages_of(["registrar"], "commit-claim")]
    assert many == [("registrar", jobs.REGISTERED), ("deliver", jobs.DELIVERED)]
    assert commit == [("registrar", jobs.COMMITTED), ("claimer", jobs.REGISTERED), ("deliver", jobs.DELIVERED)]
    default = [s.daemon for s in STAGES if s.registration in (None, MANY)]
    assert [s.daemon for s in stages_of(list(DAEMONS))] == default


@pytest.mark.parametrize(
    ("names", "registration", "message"),
    [(["generator", "painter"], MANY, "unknown daemon(s) ['painter']"), (["registrar"], "twice", "registration is")],
)
def test_the_table_refuses_unknown_daemons_and_modes(names: list[str], registration: str, message: str):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        stages_of(names, registration)


def test_the_cli_offers_exactly_the_tables_daemons():
    result = CliRunner().invoke(cli, ["agent", "painter"])
    assert result.exit_code == 2
    for daemon in DAEMONS:
        assert daemon in result.output


def test_a_prover_in_another_process_is_woken_through_redis_when_an_asset_is_delivered(redis_url: str):
    """The registrar's deliver stage and the prover run in different processes: their only link
    besides the journal is the `delivered` stream, which each opens from the same table."""
    url = redis_url.rsplit("/", 1)[0] + "/1"  # a database of its own: no other test's streams

    async def main() -> None:
        registrar_side, prover_side = aioredis.from_url(url), aioredis.from_url(url)
        try:
            deliver = next(s for s in STAGES if s.name == "deliver")
            prover = next(s for s in STAGES if s.name == "prover")
            assert deliver.outbox == prover.inbox == jobs.DELIVERED
            outbox = redis_queues(registrar_side)[deliver.outbox]
            inbox = redis_queues(prover_side)[prover.inbox]
            assert await inbox.get("prover-1", 0.05) is None  # nothing yet (and the group exists)
            await outbox.put("req-abc")
            message = await inbox.get("prover-1", 2.0)
            assert message is not None and message.key == "req-abc"
            await inbox.ack(message)
            assert await inbox.depth() == 0
        finally:
            await registrar_side.aclose()
            await prover_side.aclose()

    asyncio.run(main())
