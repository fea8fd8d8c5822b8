"""Work queues (agents/runtime/queues.py): the in-process queue and a real Redis stream."""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from agents.runtime.queues import MemoryQueue, QueueError, RedisStreamQueue, WorkQueue


@pytest.fixture(params=["memory", "redis"])
def make_queue(request: pytest.FixtureRequest) -> Callable[..., WorkQueue]:
    counter = [0]

    def make(**options: float) -> WorkQueue:
        counter[0] += 1
        name = f"{request.node.name}-{counter[0]}-{os.getpid()}"
        if request.param == "memory":
            return MemoryQueue(name, **options)  # type: ignore[arg-type]
        client = aioredis.from_url(request.getfixturevalue("redis_url"))
        return RedisStreamQueue(client, name, poll=0.01, **options)  # type: ignore[arg-type]

    return make


def test_messages_are_delivered_in_order_and_acknowledged(make_queue: Callable[..., WorkQueue]):
    async def main() -> None:
        queue = make_queue()
        for key in ("a", "b", "c"):
            await queue.put(key)
        assert await queue.depth() == 3
        got = [await queue.get("w", 1.0) for _ in range(3)]
        assert [m.key for m in got if m] == ["a", "b", "c"]
        for message in got:
            assert message is not None and message.deliveries == 1
            await queue.ack(message)
        assert await queue.depth() == 0
        assert await queue.get("w", 0.05) is None

    asyncio.run(main())


def test_put_waits_while_the_queue_is_full(make_queue: Callable[..., WorkQueue]):
    async def main() -> None:
        queue = make_queue(capacity=2)
        await queue.put("a")
        await queue.put("b")
        blocked = asyncio.create_task(queue.put("c"))
        await asyncio.sleep(0.1)
        assert not blocked.done()  # backpressure
        message = await queue.get("w", 1.0)
        assert message is not None
        await queue.ack(message)
        await asyncio.wait_for(blocked, 2.0)
        assert await queue.depth() == 2

    asyncio.run(main())


def test_put_many_adds_a_batch_at_once_and_waits_only_while_the_queue_is_full(
    make_queue: Callable[..., WorkQueue],
):
    async def main() -> None:
        queue = make_queue(capacity=3)
        await queue.put_many([])  # nothing to add: returns
        await queue.put_many(["a", "b"])
        await queue.put_many(["c", "d"])  # not full before it: the batch goes in whole (3 + 1)
        assert await queue.depth() == 4
        blocked = asyncio.create_task(queue.put_many(["e"]))
        await asyncio.sleep(0.1)
        assert not blocked.done()  # backpressure
        assert await queue.drain("w", 1.0) == 3  # at most `capacity` at once
        await asyncio.wait_for(blocked, 2.0)
        got = [await queue.get("w", 1.0) for _ in range(2)]
        assert [m.key for m in got if m] == ["d", "e"]
        with pytest.raises(QueueError, match="job key"):
            await queue.put_many(["f", ""])
        assert await queue.depth() == 2  # nothing of a refused batch went in (two unacknowledged)

    asyncio.run(main())


def test_drain_takes_every_ready_message_in_one_go_and_waits_when_there_is_none(
    make_queue: Callable[..., WorkQueue],
):
    """A stage's wake-ups: after a busy spell it takes the whole backlog at once, not one
    message each time it idles; with nothing there it waits out its time (or less, when a
    message comes); a message a dead consumer left unacknowledged is taken after reclaim."""

    async def main() -> None:
        queue = make_queue(reclaim_after=0.2)
        started = time.monotonic()
        assert await queue.drain("w", 0.1) == 0
        assert time.monotonic() - started >= 0.09
        await queue.put_many([f"k{i}" for i in range(7)])
        assert await queue.drain("w", 1.0) == 7
        assert await queue.depth() == 0
        waiter = asyncio.create_task(queue.drain("w", 5.0))
        await asyncio.sleep(0.05)
        await queue.put("late")
        assert await asyncio.wait_for(waiter, 2.0) == 1  # woken by the message, not its 5 s
        await queue.put("orphan")
        assert await queue.get("dead-worker", 1.0) is not None  # never acknowledged
        await queue.put("fresh")
        assert await queue.drain("w", 1.0) == 1  # the orphan is still the dead worker's
        await asyncio.sleep(0.25)
        assert await queue.drain("w", 1.0) == 1  # reclaimed
        assert await queue.depth() == 0

    asyncio.run(main())


def test_an_unacknowledged_message_is_redelivered_after_reclaim(make_queue: Callable[..., WorkQueue]):
    async def main() -> None:
        queue = make_queue(reclaim_after=0.2)
        await queue.put("a")
        first = await queue.get("dead-worker", 1.0)
        assert first is not None
        assert await queue.get("w2", 0.05) is None  # still leased to the dead worker
        await asyncio.sleep(0.25)
        again = await queue.get("w2", 1.0)
        assert again is not None and again.key == "a" and again.deliveries == 2
        await queue.ack(again)
        assert await queue.depth() == 0

    asyncio.run(main())


def test_getters_cancelled_as_their_wait_runs_out_leave_the_queue_working(make_queue: Callable[..., WorkQueue]):
    """A stage cancels its wait for a wake-up when it stops, often just as the wait runs out.
    Four getters at a time, each cancelled at a random moment around its 2 ms wait, 300
    times (30 on Redis): every cancel ends its getter at once, no getter raises anything else, and the queue
    still delivers afterwards. (Python 3.11's `wait_for` around the in-process queue's condition
    let a late cancel release the condition's lock twice, then hold it for ever: this hung.)"""
    rng = random.Random(7)

    async def one(queue: WorkQueue, errors: list[BaseException]) -> None:
        getter = asyncio.create_task(queue.get("w", 0.002))
        await asyncio.sleep(rng.uniform(0.0015, 0.0025))
        getter.cancel()
        try:
            message = await asyncio.wait_for(getter, 2.0)
        except asyncio.CancelledError:
            return
        except BaseException as error:  # TimeoutError: the cancelled getter never ended
            errors.append(error)
            return
        if message is not None:
            await queue.ack(message)

    async def main() -> None:
        queue = make_queue()
        errors: list[BaseException] = []
        for _ in range(300 if isinstance(queue, MemoryQueue) else 30):  # a Redis get costs round trips
            await asyncio.gather(*(one(queue, errors) for _ in range(4)))
        assert errors == []
        await asyncio.wait_for(queue.put("k"), 2.0)
        message = await asyncio.wait_for(queue.get("w", 1.0), 2.0)
        assert message is not None and message.key == "k"

    asyncio.run(asyncio.wait_for(main(), 60.0))


def test_bad_messages_and_settings_are_refused(make_queue: Callable[..., WorkQueue]):
    async def main() -> None:
        with pytest.raises(QueueError, match="job key"):
            await make_queue().put("")
        with pytest.raises(QueueError, match="capacity"):
            make_queue(capacity=0)

    asyncio.run(main())


def test_a_foreign_message_without_a_key_is_dropped_not_looped(redis_url: str):
    async def main() -> None:
        client = aioredis.from_url(redis_url)
        queue = RedisStreamQueue(client, f"foreign-{os.getpid()}")
        await queue.put("ok")
        await client.xadd(queue.stream, {"junk": "1"})
        first = await queue.get("w", 1.0)
        assert first is not None and first.key == "ok"
        with pytest.raises(QueueError, match="no job key"):
            await queue.get("w", 1.0)
        assert await queue.get("w", 0.05) is None  # acknowledged away, never redelivered

    asyncio.run(main())


_CONSUMER = textwrap.dedent(
    """
    import asyncio, pathlib, sys
    import redis.asyncio as aioredis
    from agents.runtime.queues import RedisStreamQueue

    async def main() -> None:
        queue = RedisStreamQueue(aioredis.from_url(sys.argv[1]), sys.argv[2], reclaim_after=0.5)
        folder = pathlib.Path(sys.argv[4])
        (folder / f"ready-{sys.argv[3]}").touch()
        while not (folder / "go").exists():  # both start together: neither drains the stream alone
            await asyncio.sleep(0.01)
        idle = 0
        while idle < 20:
            message = await queue.get(sys.argv[3], 0.1)
            if message is None:
                idle += 1
                continue
            idle = 0
            print(message.key, flush=True)
            await queue.ack(message)
            await asyncio.sleep(0.002)  # a little work per message, so the two interleave

    asyncio.run(main())
    """
)


def test_two_processes_share_a_stream_and_each_message_is_handled_once(redis_url: str, tmp_path: Path):
    name = f"shared-{os.getpid()}"

    async def fill() -> None:
        queue = RedisStreamQueue(aioredis.from_url(redis_url), name, capacity=1_000)
        for i in range(400):
            await queue.put(f"job{i}")

    asyncio.run(fill())
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _CONSUMER, redis_url, name, f"w{n}", str(tmp_path)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(2)
    ]
    deadline = time.monotonic() + 120
    while not all((tmp_path / f"ready-w{n}").exists() for n in range(2)):
        assert time.monotonic() < deadline and all(w.poll() is None for w in workers), "the workers did not start"
        time.sleep(0.01)
    (tmp_path / "go").touch()
    outputs = [w.communicate(timeout=120)[0].split() for w in workers]
    assert all(outputs), "both workers took part"
    handled = outputs[0] + outputs[1]
    assert sorted(handled) == sorted(f"job{i}" for i in range(400))  # every message, exactly once
