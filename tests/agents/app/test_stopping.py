"""`proofmint up`/`agent` stopping (agents/app/commands.py `stopped`): a drain that does not end
says what it waits on."""

from __future__ import annotations

import asyncio

import pytest

from agents.app.commands import stopped


def test_a_drain_that_does_not_end_names_the_task_and_where_it_waits(capsys: pytest.CaptureFixture[str]):
    async def stuck_stage() -> None:
        await asyncio.Event().wait()  # never set: a stage that ignores its stop

    async def main() -> None:
        stage = asyncio.create_task(stuck_stage(), name="publisher")
        await asyncio.sleep(0)
        drain = asyncio.create_task(stopped(asyncio.gather(stage), every_s=0.05))
        await asyncio.sleep(0.12)
        assert not drain.done()
        stage.cancel()
        with pytest.raises(asyncio.CancelledError):
            await drain

    asyncio.run(main())
    err = capsys.readouterr().err
    assert "still stopping after" in err and "task(s) not finished" in err
    assert "publisher: stuck_stage (test_stopping.py:" in err


def test_a_drain_that_ends_in_time_says_nothing(capsys: pytest.CaptureFixture[str]):
    ended: list[bool] = []

    async def quick() -> None:
        await asyncio.sleep(0.01)
        ended.append(True)

    asyncio.run(stopped(quick(), every_s=1.0))
    assert ended == [True] and capsys.readouterr().err == ""
