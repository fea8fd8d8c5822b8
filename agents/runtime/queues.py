"""Work queues between the stages: bounded, acknowledged, and shareable through Redis Streams.

A message carries a job key (the journal holds the job itself). Delivery is at least once: a
consumer acknowledges a message after the job's stage has advanced in the journal; a message
whose consumer died unacknowledged is reclaimed after `reclaim_after` seconds and delivered
again, and the journal's compare-and-set makes the second delivery a no-op if the first got
through. Both backends apply backpressure: `put` waits while the queue holds `capacity` messages
(`put_many` while it is full, then adds all of its keys at once: a queue may hold `capacity`
plus one batch).

A stage uses its inbox as wake-ups (the journal holds the jobs): `drain` waits for a message and
then acknowledges every message ready for it at once, so a stage that was busy takes its whole
backlog of hints in one round trip instead of one message each time it idles.

- `MemoryQueue`: one process (`proofmint up`), asyncio only.
- `RedisStreamQueue`: a Redis stream with one consumer group per stage, so several processes
  or machines share a stage's work (XREADGROUP, XACK, XAUTOCLAIM).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from agents.core.errors import PermanentError


class QueueError(PermanentError, ValueError):
    """A malformed message or queue configuration."""


@dataclass(frozen=True)
class Message:
    id: str
    key: str
    deliveries: int


class WorkQueue(Protocol):
    name: str

    async def put(self, key: str) -> None: ...

    async def put_many(self, keys: Sequence[str]) -> None: ...

    async def get(self, consumer: str, wait: float) -> Message | None:
        """The next message for `consumer`, or None after `wait` seconds without one."""
        ...

    async def ack(self, message: Message) -> None: ...

    async def drain(self, consumer: str, wait: float) -> int:
        """Waits up to `wait` seconds for a message for `consumer`, then acknowledges it and
        every other one ready (at most `capacity`, reclaimed ones included) without waiting; how
        many it took (0: none came)."""
        ...

    async def depth(self) -> int: ...


class MemoryQueue:
    """An in-process bounded queue with acknowledgement and reclaim (see the module docstring)."""

    def __init__(self, name: str, *, capacity: int = 256, reclaim_after: float = 60.0) -> None:
        if capacity < 1:
            raise QueueError("capacity must be at least 1")
        self.name, self.capacity, self.reclaim_after = name, capacity, reclaim_after
        self._ready: OrderedDict[str, tuple[str, int]] = OrderedDict()
        self._pending: dict[str, tuple[str, int, float]] = {}
        self._changed = asyncio.Condition()
        self._next = 0

    async def put(self, key: str) -> None:
        await self.put_many([key])

    async def put_many(self, keys: Sequence[str]) -> None:
        if not all(keys):
            raise QueueError("a message needs a job key")
        if not keys:
            return
        async with self._changed:
            await self._changed.wait_for(lambda: len(self._ready) + len(self._pending) < self.capacity)
            for key in keys:
                self._next += 1
                self._ready[str(self._next)] = (key, 0)
            self._changed.notify_all()

    async def drain(self, consumer: str, wait: float) -> int:
        async with self._changed:
            self._reclaim()
            try:  # not `wait_for`: see `get`
                async with asyncio.timeout(wait):
                    await self._changed.wait_for(lambda: bool(self._ready) or self._reclaim())
            except TimeoutError:
                return 0
            taken = min(len(self._ready), self.capacity)
            for _ in range(taken):
                self._ready.popitem(last=False)
            self._changed.notify_all()
            return taken

    async def get(self, consumer: str, wait: float) -> Message | None:
        async with self._changed:
            self._reclaim()
            try:
                # not `wait_for`: on Python 3.11 it waits in a task of its own, and a cancel that
                # lands as its time runs out leaves that task to take the lock after this one
                # has left the `async with`: the lock is released twice, then held for ever
                async with asyncio.timeout(wait):
                    await self._changed.wait_for(lambda: bool(self._ready) or self._reclaim())
            except TimeoutError:
                return None
            message_id, (key, deliveries) = self._ready.popitem(last=False)
            self._pending[message_id] = (key, deliveries + 1, time.monotonic())
            return Message(message_id, key, deliveries + 1)

    def _reclaim(self) -> bool:
        now = time.monotonic()
        stale = [i for i, (_, _, at) in self._pending.items() if now - at >= self.reclaim_after]
        for message_id in stale:
            key, deliveries, _ = self._pending.pop(message_id)
            self._ready[message_id] = (key, deliveries)
        return bool(stale)

    async def ack(self, message: Message) -> None:
        async with self._changed:
            self._pending.pop(message.id, None)
            self._changed.notify_all()

    async def depth(self) -> int:
        return len(self._ready) + len(self._pending)


class RedisStreamQueue:
    """A stage's queue as a Redis stream and consumer group (see the module docstring).

    Acknowledged messages are deleted from the stream, so its length is the queue depth."""

    def __init__(
        self,
        client: Any,
        name: str,
        *,
        group: str = "workers",
        capacity: int = 256,
        reclaim_after: float = 60.0,
        poll: float = 0.05,
    ) -> None:
        if capacity < 1:
            raise QueueError("capacity must be at least 1")
        self.client, self.name, self.group = client, name, group
        self.stream = f"proofmint:queue:{name}"
        self.capacity, self.reclaim_after, self.poll = capacity, reclaim_after, poll
        self._ready = False

    async def _ensure_group(self) -> None:
        if self._ready:
            return
        try:
            await self.client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except Exception as error:  # redis.ResponseError: the group exists (BUSYGROUP)
            if "BUSYGROUP" not in str(error):
                raise
        self._ready = True

    async def put(self, key: str) -> None:
        await self.put_many([key])

    async def put_many(self, keys: Sequence[str]) -> None:
        if not all(keys):
            raise QueueError("a message needs a job key")
        if not keys:
            return
        await self._ensure_group()
        while await self.client.xlen(self.stream) >= self.capacity:  # noqa: ASYNC110 - the state is in Redis
            await asyncio.sleep(self.poll)
        async with self.client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.xadd(self.stream, {"key": key})
            await pipe.execute()

    async def drain(self, consumer: str, wait: float) -> int:
        await self._ensure_group()
        claimed = await self.client.xautoclaim(
            self.stream,
            self.group,
            consumer,
            min_idle_time=int(self.reclaim_after * 1000),
            start_id="0-0",
            count=self.capacity,
        )
        ids = [message_id for message_id, _ in (claimed[1] if claimed else [])]
        reply = await self.client.xreadgroup(
            self.group,
            consumer,
            {self.stream: ">"},
            count=self.capacity,
            block=None if ids else max(1, int(wait * 1000)),
        )
        ids += [message_id for message_id, _ in (reply[0][1] if reply else [])]
        if ids:
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.xack(self.stream, self.group, *ids)
                pipe.xdel(self.stream, *ids)
                await pipe.execute()
        return len(ids)

    async def get(self, consumer: str, wait: float) -> Message | None:
        await self._ensure_group()
        claimed = await self.client.xautoclaim(
            self.stream, self.group, consumer, min_idle_time=int(self.reclaim_after * 1000), start_id="0-0", count=1
        )
        entries = claimed[1] if claimed else []
        if entries:
            message_id, fields = entries[0]
            return await self._message(message_id, fields)
        reply = await self.client.xreadgroup(
            self.group, consumer, {self.stream: ">"}, count=1, block=max(1, int(wait * 1000))
        )
        if not reply:
            return None
        _, messages = reply[0]
        message_id, fields = messages[0]
        return await self._message(message_id, fields)

    async def _message(self, message_id: Any, fields: dict[Any, Any]) -> Message:
        text_id = message_id.decode() if isinstance(message_id, bytes) else str(message_id)
        raw = fields.get(b"key", fields.get("key"))
        if raw is None:
            await self.client.xack(self.stream, self.group, text_id)
            raise QueueError(f"message {text_id} on {self.stream} has no job key; dropped")
        info = await self.client.xpending_range(self.stream, self.group, min=text_id, max=text_id, count=1)
        deliveries = int(info[0]["times_delivered"]) if info else 1
        return Message(text_id, raw.decode() if isinstance(raw, bytes) else str(raw), deliveries)

    async def ack(self, message: Message) -> None:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.xack(self.stream, self.group, message.id)
            pipe.xdel(self.stream, message.id)
            await pipe.execute()

    async def depth(self) -> int:
        return int(await self.client.xlen(self.stream))
