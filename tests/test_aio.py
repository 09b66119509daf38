"""AsyncOrderedSender end to end through boto3 and the emulator over HTTP: puts, awaited receipts
and flush that never block the event loop (a ticking task measures the longest stall), the same
order and errors as the OrderedSender, and a clean close."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import pytest
import tenacity

from ordered_sender import (
    AsyncOrderedSender,
    DeliveryError,
    DeliveryFailed,
    LanePaused,
    OrderedSender,
    OutboxInUse,
    SenderClosed,
    SenderConfig,
)
from ordered_sender.emulator import Emulator, Faults, TargetedFault

T = TypeVar("T")
TICK_SECONDS = 0.002
STALL_LIMIT_SECONDS = 0.2
"""Far above what thread switching costs the loop, far below one request of the slow endpoint."""
SLOW_REQUEST_MS = 400


class LoopStalls:
    """A task that ticks every 2 ms: the longest gap between two ticks is the longest time the
    event loop was kept from running anything else."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(TICK_SECONDS)
            now = time.monotonic()
            self.longest = max(self.longest, now - last)
            last = now

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._tick())
        await asyncio.sleep(0)  # let it take its first time
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._task is not None
        self._task.cancel()


def numbers(emulator: Emulator, input_name: str) -> list[int]:
    """The "n" of each message the endpoint processed for ``input_name``, in processing order."""
    return [json.loads(p.payload)["n"] for p in emulator.processed(input_name)]


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coroutine, timeout=60))


def test_puts_receipts_and_flush_keep_order_and_never_block_the_loop(
    outbox: Path, emulator: Emulator
) -> None:
    lanes = [f"Lane{n}" for n in range(4)]
    for lane in lanes:
        emulator.create_input(lane)
    emulator.set_faults(Faults(latency_ms=(SLOW_REQUEST_MS, SLOW_REQUEST_MS)))
    client = emulator.client("iotevents-data")
    # Four pending at most: the fifth put waits for a slow request to make room.
    config = SenderConfig(max_pending_messages=4)

    async def main() -> float:
        async with LoopStalls() as stalls, AsyncOrderedSender(outbox, client, config) as sender:
            receipts = [await sender.put(lanes[n % 4], {"n": n}) for n in range(12)]
            await asyncio.gather(*receipts)
            assert await sender.flush(timeout=30)
            assert (await sender.stats()).delivered == 12
        return stalls.longest

    longest_stall = run(main())

    assert longest_stall < STALL_LIMIT_SECONDS
    for number, lane in enumerate(lanes):
        assert numbers(emulator, lane) == [
            number,
            number + 4,
            number + 8,
        ]


def test_awaited_receipts_hold_no_executor_thread(outbox: Path, emulator: Emulator) -> None:
    """With a single executor thread, a receipt that waited in a thread would leave none for the
    next put: the watcher thread waits for all of them instead."""
    emulator.create_input("A")
    emulator.create_input("B")
    emulator.set_faults(
        Faults(targeted=(TargetedFault("ThrottlingException", message_id="stuck", count=None),))
    )
    client = emulator.client("iotevents-data")

    config = SenderConfig(retry_wait=tenacity.wait_fixed(0.2))

    async def main() -> None:
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=1))
        async with AsyncOrderedSender(outbox, client, config) as sender:
            stuck = await sender.put("A", {"n": 0}, message_id="stuck")
            waiting = [asyncio.ensure_future(stuck.result()) for _ in range(3)]
            await asyncio.sleep(0)  # each of them waits now
            try:
                async with asyncio.timeout(10):
                    await (await sender.put("B", {"n": 1}))
                assert not any(wait.done() for wait in waiting)
            finally:
                emulator.set_faults(Faults())  # "stuck" goes through at its next retry
            await asyncio.gather(*waiting)

    run(main())
    assert numbers(emulator, "B") == [1]
    assert numbers(emulator, "A") == [0]


def test_receipts_raise_what_a_synchronous_receipt_raises(
    tmp_path: Path, emulator: Emulator
) -> None:
    emulator.create_input("A")
    emulator.set_faults(
        Faults(targeted=(TargetedFault("InvalidRequestException", message_id="bad", count=None),))
    )
    client = emulator.client("iotevents-data")
    dead_letter = SenderConfig(on_permanent_failure="dead_letter")

    async def main() -> None:
        async with AsyncOrderedSender(tmp_path / "dead.db", client, dead_letter) as sender:
            refused = await sender.put("A", {"n": 0}, message_id="bad")
            after = await sender.put("A", {"n": 1})
            with pytest.raises(DeliveryFailed) as failed:
                await refused
            assert failed.value.error_code == "InvalidRequestException"
            await after
            assert [d.message_id for d in await sender.dead_letters()] == ["bad"]

        async with AsyncOrderedSender(tmp_path / "paused.db", client) as sender:
            head = await sender.put("Missing", {"n": 0})
            behind = await sender.put("Missing", {"n": 1})
            for receipt in (head, behind):
                with pytest.raises(LanePaused) as paused:
                    await receipt.result(timeout=30)
                assert paused.value.message_id == receipt.message_id
            assert [p.lane for p in await sender.paused_lanes()] == ["Missing"]
            emulator.create_input("Missing")
            assert await sender.resume("Missing")
            await asyncio.gather(head.result(timeout=30), behind.result(timeout=30))

    run(main())


def test_a_wait_that_times_out_or_is_cancelled_leaves_delivery_going(
    outbox: Path, emulator: Emulator
) -> None:
    emulator.create_input("A")
    emulator.set_faults(
        Faults(targeted=(TargetedFault("ThrottlingException", message_id="slow", count=3),))
    )
    client = emulator.client("iotevents-data")
    config = SenderConfig(retry_wait=tenacity.wait_fixed(0.3))

    async def main() -> None:
        async with AsyncOrderedSender(outbox, client, config) as sender:
            receipt = await sender.put("A", {"n": 0}, message_id="slow")
            assert not await receipt.delivered()
            with pytest.raises(TimeoutError, match=r"slow not delivered within 0\.05 s"):
                await receipt.result(timeout=0.05)
            assert await sender.flush(timeout=0.05) is False
            cancelled = asyncio.create_task(receipt.result())
            await asyncio.sleep(0)
            cancelled.cancel()
            await receipt.result(timeout=30)
            assert await receipt.delivered()
            assert await sender.flush(timeout=30)

    run(main())
    assert [p.message_id for p in emulator.processed("A")] == ["slow"]


def test_close_fails_the_waits_left_and_frees_the_outbox(outbox: Path, emulator: Emulator) -> None:
    emulator.create_input("A")
    emulator.set_faults(
        Faults(targeted=(TargetedFault("ThrottlingException", message_id="stuck", count=None),))
    )
    client = emulator.client("iotevents-data")

    async def main() -> None:
        sender = await AsyncOrderedSender(outbox, client).open()
        receipt = await sender.put("A", {"n": 0}, message_id="stuck")
        waiting = asyncio.ensure_future(receipt.result())
        flushing = asyncio.ensure_future(sender.flush())
        await asyncio.sleep(0)
        await sender.close()
        with pytest.raises(DeliveryError, match="closed first"):
            await waiting
        with pytest.raises(DeliveryError, match="closed first"):
            await flushing
        with pytest.raises(SenderClosed):
            await sender.put("A", {"n": 1})
        with pytest.raises(SenderClosed):
            await sender.open()

    run(main())
    with OrderedSender(outbox, client=client, autostart=False) as reopened:
        assert reopened.counts().pending == 1  # kept for the next sender


def test_an_unopened_sender_says_how_to_open_it(outbox: Path) -> None:
    sender = AsyncOrderedSender(outbox)
    with pytest.raises(RuntimeError, match="async with AsyncOrderedSender"):
        run(sender.put("A", {"n": 0}))


def test_a_cancelled_open_closes_what_it_opened(outbox: Path, emulator: Emulator) -> None:
    client = emulator.client("iotevents-data")

    async def main() -> None:
        opening = asyncio.create_task(AsyncOrderedSender(outbox, client).open())
        await asyncio.sleep(0)  # the thread that opens it has started
        opening.cancel()
        with pytest.raises(asyncio.CancelledError):
            await opening
        deadline = time.monotonic() + 30
        while True:  # the outbox is free once the thread opened it and it was closed again
            try:
                await asyncio.to_thread(OrderedSender(outbox, client=client, autostart=False).close)
                return
            except OutboxInUse:
                assert time.monotonic() < deadline, "the cancelled open kept the outbox"
                await asyncio.sleep(0.01)

    run(main())


def test_receipts_settle_as_their_requests_finish_not_at_the_next_poll(
    outbox: Path, emulator: Emulator
) -> None:
    emulator.create_input("A")
    emulator.create_input("B")
    client = emulator.client("iotevents-data")
    # A poll far longer than the test may take: only the finished requests can wake the waits.
    config = SenderConfig(idle_poll_seconds=300)

    async def main() -> None:
        async with AsyncOrderedSender(outbox, client, config) as sender:
            receipts = await sender.put_many([("AB"[n % 2], {"n": n}) for n in range(30)])
            async with asyncio.timeout(20):
                await asyncio.gather(*receipts)
                assert await sender.flush()

    run(main())
    assert numbers(emulator, "A") == list(range(0, 30, 2))


def test_a_closed_sender_still_reports_its_final_counters(outbox: Path, emulator: Emulator) -> None:
    emulator.create_input("Lane0")
    client = emulator.client("iotevents-data")

    async def scenario() -> None:
        async with AsyncOrderedSender(outbox, client) as sender:
            await sender.put_many([("Lane0", {"n": n}) for n in range(5)])
            assert await sender.flush(timeout=30)
        final = await sender.stats()
        assert (final.enqueued, final.delivered, final.pending) == (5, 5, 0)

    run(scenario())
