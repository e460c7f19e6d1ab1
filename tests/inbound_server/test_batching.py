"""The SMTP server's batching: what waits together goes to the database together, and the
queue pusher gathers many commits into one push without losing any."""

from __future__ import annotations

import asyncio
import time

import pytest

from inbound.batching import Batcher, QueuePusher


def test_requests_waiting_together_are_answered_by_one_batch_each_with_its_own_answer() -> None:
    batches: list[list[int]] = []

    async def double(requests: list[int]) -> list[int | BaseException]:
        batches.append(requests)
        await asyncio.sleep(0.01)  # the database's time: newcomers wait for the next batch
        return [ValueError(n) if n == 3 else n * 2 for n in requests]

    async def scenario() -> list[int | BaseException]:
        batcher: Batcher[int, int] = Batcher("test", double)
        first = asyncio.gather(*(batcher.ask(n) for n in range(5)), return_exceptions=True)
        await asyncio.sleep(0)  # the first batch is at the database now
        second = asyncio.gather(*(batcher.ask(n) for n in range(5, 8)), return_exceptions=True)
        return [*await first, *await second]

    answers = asyncio.run(scenario())

    assert batches == [[0, 1, 2, 3, 4], [5, 6, 7]]
    assert answers[:3] + answers[4:] == [0, 2, 4, 8, 10, 12, 14]
    assert isinstance(answers[3], ValueError)  # only that request fails


def test_a_failed_batch_fails_every_request_in_it_and_the_next_batch_still_runs() -> None:
    calls = 0

    async def flaky(requests: list[int]) -> list[int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("database gone")
        return requests

    async def scenario() -> tuple[list[object], int]:
        batcher: Batcher[int, int] = Batcher("test", flaky)
        failed = await asyncio.gather(*(batcher.ask(n) for n in range(3)), return_exceptions=True)
        return failed, await batcher.ask(9)

    failed, later = asyncio.run(scenario())

    assert [type(answer) for answer in failed] == [ConnectionError] * 3
    assert later == 9


def test_a_closed_batcher_refuses_new_requests() -> None:
    async def echo(requests: list[int]) -> list[int]:
        return requests

    async def scenario() -> None:
        batcher: Batcher[int, int] = Batcher("test", echo)
        assert await batcher.ask(1) == 1
        await batcher.close()
        with pytest.raises(RuntimeError, match="closed"):
            await batcher.ask(2)

    asyncio.run(scenario())


def test_the_pusher_gathers_commits_into_one_push_and_pushes_what_is_left_when_closed() -> None:
    pushed: list[list[int]] = []
    pusher = QueuePusher(pushed.append, linger=0.2)
    pusher.start()
    for ids in ([1], [2, 3], [4]):
        pusher.put(ids)
    pusher.close()  # within the linger: nothing handed over may be left behind

    assert pushed == [[1, 2, 3, 4]]


def test_a_failed_push_is_logged_and_the_pusher_carries_on(caplog: pytest.LogCaptureFixture) -> None:
    pushed: list[list[int]] = []

    def push(ids: list[int]) -> None:
        if ids == [1]:
            raise ConnectionError("queue gone")
        pushed.append(ids)

    pusher = QueuePusher(push, linger=0.01)
    pusher.start()
    pusher.put([1])
    for _ in range(100):  # the first push has failed once the next one can go
        if "queue push failed for 1 stored email(s)" in caplog.text:
            break
        time.sleep(0.01)
    pusher.put([2])
    pusher.close()

    assert "queue push failed for 1 stored email(s)" in caplog.text
    assert pushed == [[2]]
