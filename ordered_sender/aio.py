"""AsyncOrderedSender: the OrderedSender for asyncio programs, on the same outbox and guarantees.

It wraps an OrderedSender, which delivers in its own threads as ever, and never blocks the event
loop: opening, putting (a commit to disk), reading and closing run in the loop's default executor
(``asyncio.to_thread``); waiting for deliveries holds no executor thread at all. One watcher
thread per sender settles the awaited receipts and flushes on the loop (``call_soon_threadsafe``,
once per round). Delivery's recorder wakes it when a request finishes and names that request's
lanes (``StatsRecorder.take_news``); it looks at those lanes, at lanes newly awaited, and at every
lane awaited after a quiet ``idle_poll_seconds`` (a resume, another worker of a shared outbox). In
a lane it looks only at the oldest message awaited, as a lane is delivered in order: a round costs
one look per lane that moved, however many receipts wait.

Ordering is the OrderedSender's: once ``await sender.put(m1)`` returned, a later put of the same
lane is sent after m1. Receipts raise what ``Receipt.result`` raises.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, NamedTuple, Self, TypeVar

from ordered_sender.config import SenderConfig
from ordered_sender.errors import DeliveryError, SenderClosed, StoreError
from ordered_sender.events import log
from ordered_sender.outbox import Clock, PutItem, Receipt, wall_clock
from ordered_sender.sender import OrderedSender
from ordered_sender.stats import SenderStats, StatsRecorder
from ordered_sender.store import DeadLetter, OutboxCounts, PausedLane
from ordered_sender.store.open import DatabaseUrl
from ordered_sender.transport import Transport

T = TypeVar("T")
Outcome = tuple["asyncio.Future[Any]", object]
"""A wait and what settles it: a result, or an exception to raise."""


@dataclass(frozen=True, slots=True)
class AsyncReceipt:
    """Proof that a message is committed to the outbox; ``await receipt`` waits for its delivery."""

    message_id: str
    lane: str
    seq: int
    _watcher: _Watcher = field(repr=False, compare=False)

    async def result(self, timeout: float | None = None) -> None:
        """Wait until the message is delivered, without blocking the loop.

        Raises ``LanePaused`` while its lane is paused, ``DeliveryFailed`` when it was
        dead-lettered, ``DeliveryError`` when the sender stopped or closed first and
        ``TimeoutError`` when ``timeout`` seconds pass first, as ``Receipt.result`` does.
        """
        try:
            async with asyncio.timeout(timeout):
                await self._watcher.delivery_of(self)
        except TimeoutError:
            raise TimeoutError(
                f"message {self.message_id} not delivered within {timeout} s"
            ) from None

    async def delivered(self) -> bool:
        """Whether it was delivered already (one look at the outbox, off the loop)."""
        return await asyncio.to_thread(self._watcher.delivered, self.message_id)

    def __await__(self) -> Any:
        # ``result()`` without a timeout, minus its coroutine: gathering thousands is cheaper.
        return self._watcher.delivery_of(self).__await__()


class _Waiter(NamedTuple):
    """One awaited message; a lane's waiters are a heap, oldest message first (a tuple compares
    fast: thousands are gathered at once)."""

    seq: int
    order: int
    """Ties broken by arrival, so a heap never compares futures."""
    message_id: str
    future: asyncio.Future[None]


class _Watcher:
    """The one thread that waits for deliveries on behalf of every awaited receipt and flush."""

    def __init__(
        self, sender: OrderedSender, recorder: StatsRecorder, loop: asyncio.AbstractEventLoop
    ) -> None:
        self._sender = sender
        self._recorder = recorder
        self._loop = loop
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        """Where the thread waits while nothing is awaited (finished requests do not wake it)."""
        self._lanes: dict[str, list[_Waiter]] = {}
        self._flushes: list[asyncio.Future[bool]] = []
        self._new_lanes: set[str] = set()
        """Lanes with a wait added since the thread last looked."""
        self._arrivals = itertools.count()
        self._stopping = False
        self._wake_due = False
        recorder.track_lanes()
        self._thread = threading.Thread(target=self._watch, name="ordered-sender-aio", daemon=True)
        self._thread.start()

    # -- the loop's side -----------------------------------------------------------------------

    def delivery_of(self, receipt: AsyncReceipt) -> asyncio.Future[None]:
        future: asyncio.Future[None] = self._loop.create_future()
        waiter = _Waiter(receipt.seq, next(self._arrivals), receipt.message_id, future)
        with self._lock:
            heapq.heappush(self._lanes.setdefault(receipt.lane, []), waiter)
            self._new_lanes.add(receipt.lane)
            self._idle.notify()
        self._wake_soon()
        return future

    def flushed(self) -> asyncio.Future[bool]:
        future: asyncio.Future[bool] = self._loop.create_future()
        with self._lock:
            self._flushes.append(future)
            self._idle.notify()
        self._wake_soon()
        return future

    def delivered(self, message_id: str) -> bool:
        return _outcome(self._sender, message_id) is None

    def _wake_soon(self) -> None:
        """Wake the thread once for every wait added in this turn of the loop (gathering a
        thousand receipts wakes it once, not a thousand times)."""
        if not self._wake_due:
            self._wake_due = True
            self._loop.call_soon(self._wake)

    def _wake(self) -> None:
        self._wake_due = False
        self._recorder.wake_waiters()

    def stop(self) -> None:
        """Make the thread end (``join`` it off the loop); what waits then fails."""
        with self._lock:
            self._stopping = True
            self._idle.notify()
        self._recorder.wake_waiters()

    def join(self) -> None:
        self._thread.join()

    def fail_all(self, reason: str) -> list[Outcome]:
        """Every wait left, taken away, with DeliveryError(``reason``) to settle it with."""
        with self._lock:
            waiters = [w for heap in self._lanes.values() for w in heap]
            flushes, self._flushes, self._lanes = self._flushes, [], {}
        failed: list[Outcome] = [
            (waiter.future, DeliveryError(waiter.message_id, "", reason)) for waiter in waiters
        ]
        return failed + [(flush, DeliveryError("", "", reason)) for flush in flushes]

    # -- the thread ----------------------------------------------------------------------------

    def _watch(self) -> None:
        poll = self._sender.config.idle_poll_seconds
        everything = True
        while True:
            with self._lock:
                while not (self._lanes or self._flushes or self._stopping):
                    self._idle.wait()
                if self._stopping:
                    return
            seen, finished = self._recorder.take_news()
            with self._lock:
                lanes = None if everything else finished | self._new_lanes
                self._new_lanes = set()
            try:
                self._look(lanes)
            except Exception:
                # A bug, not a fault of the disk (that is a StoreError, looked at again later).
                log.exception("aio.watcher_error")
            # Woken by a finished request or a new wait, it looks at their lanes only; after a
            # quiet poll, at every lane awaited (a resume, a store that records again).
            everything = self._recorder.wait_for_change(seen, poll) == seen

    def _look(self, lanes: set[str] | None) -> None:
        """Settle what can be settled in ``lanes`` (None: all), and the flushes."""
        failure = self._sender.failure
        if failure is not None:
            self._settle_soon(self.fail_all(f"the sender stopped: {failure}"))
            return
        with self._lock:
            awaited = list(self._lanes) if lanes is None else [n for n in lanes if n in self._lanes]
        settled: list[Outcome] = []
        for lane in awaited:
            self._look_at_lane(lane, settled)
        with self._lock:
            flushes = list(self._flushes)
        if flushes and self._sender.store.deliverable_lanes() == 0:
            with self._lock:
                self._flushes = [f for f in self._flushes if f not in flushes]
            settled += [(flush, True) for flush in flushes]
        self._settle_soon(settled)

    def _look_at_lane(self, lane: str, settled: list[Outcome]) -> None:
        """Settle the awaited messages of ``lane``, oldest first, up to one still on its way."""
        while True:
            with self._lock:
                heap = self._lanes.get(lane)
                if not heap:
                    self._lanes.pop(lane, None)
                    return
                oldest = heap[0]
            if not oldest.future.done():  # a cancelled wait is only dropped
                try:
                    outcome = _outcome(self._sender, oldest.message_id)
                except StoreError:
                    return  # the disk cannot be read now: look again next round
                if outcome is _ON_ITS_WAY:
                    return
                settled.append((oldest.future, outcome))
            with self._lock:
                heapq.heappop(heap)

    def _settle_soon(self, settled: list[Outcome]) -> None:
        """Settle on the loop, in one call for the whole round."""
        if settled:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody awaits any more
                self._loop.call_soon_threadsafe(_settle_all, settled)


_ON_ITS_WAY = object()
"""The message is neither delivered nor stuck: wait on."""


def _outcome(sender: OrderedSender, message_id: str) -> object:
    """None once delivered, the DeliveryError that ``Receipt.result`` would raise, or
    _ON_ITS_WAY; one look, as the synchronous receipt looks."""
    try:
        sender.wait_delivered(message_id, timeout=0)
    except TimeoutError:
        return _ON_ITS_WAY
    except DeliveryError as error:
        return error
    return None


def _settle_all(settled: list[Outcome]) -> None:
    for future, outcome in settled:
        if future.done():
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


def _close_unused(opening: asyncio.Future[OrderedSender]) -> None:
    if not opening.cancelled() and opening.exception() is None:
        asyncio.get_running_loop().run_in_executor(None, opening.result().close)


class AsyncOrderedSender:
    """Durable, per-lane ordered delivery to IoT Events, for asyncio.

    Takes the arguments of ``OrderedSender`` and opens one in ``async with`` (or ``await
    sender.open()``), in a thread; it delivers in the background from then on. ``close()`` (or
    the end of the ``async with``) lets requests in flight finish and keeps the rest in the
    outbox; receipts still awaited then raise DeliveryError.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | DatabaseUrl,
        client: Any = None,
        config: SenderConfig | None = None,
        *,
        transport: Transport | None = None,
        clock: Clock = wall_clock,
        create: bool = True,
    ) -> None:
        self._open_sender = lambda: OrderedSender(
            path, client, config, transport=transport, clock=clock, create=create
        )
        self._path = path
        self._sender: OrderedSender | None = None
        self._watcher: _Watcher | None = None
        self._closed = False

    async def open(self) -> Self:
        """Open the outbox and start delivering; raises what ``OrderedSender`` raises."""
        if self._closed:
            raise SenderClosed(f"the sender on {self._path} is closed; open a new one to go on")
        if self._sender is not None:
            return self
        opening = asyncio.ensure_future(asyncio.to_thread(self._open_sender))
        try:
            sender = await asyncio.shield(opening)
        except asyncio.CancelledError:
            # The thread opens it all the same: close what nobody will use, off the loop.
            opening.add_done_callback(_close_unused)
            raise
        # The asyncio side waits on the recorder's wake-ups rather than polling the store.
        recorder = sender._stats
        self._watcher = _Watcher(sender, recorder, asyncio.get_running_loop())
        self._sender = sender
        return self

    @property
    def sender(self) -> OrderedSender:
        """The OrderedSender underneath (its blocking methods are not for the event loop)."""
        self._check_open()
        assert self._sender is not None
        return self._sender

    def _check_open(self) -> None:
        if self._closed:
            raise SenderClosed(f"the sender on {self._path} is closed; open a new one to go on")
        if self._sender is None:
            raise RuntimeError(
                "the AsyncOrderedSender is not open: use `async with AsyncOrderedSender(...)` "
                "or `await sender.open()` first"
            )

    async def _call(self, method: Callable[..., T], *args: Any) -> T:
        """``method`` of the OrderedSender, run in a thread."""
        self._check_open()
        return await asyncio.to_thread(method, *args)

    async def put(
        self,
        input_name: str,
        payload: object,
        *,
        message_id: str | None = None,
        timestamp_ms: int | None = None,
        timeout: float | None = None,
    ) -> AsyncReceipt:
        """Commit one message, off the loop; returns once it is on disk (see ``put_many``)."""
        item = (input_name, payload, message_id, timestamp_ms)
        (receipt,) = await self.put_many([item], timeout=timeout)
        return receipt

    async def put_many(
        self, items: Iterable[PutItem], *, timeout: float | None = None
    ) -> list[AsyncReceipt]:
        """Commit several messages in one transaction, all or none, off the loop; see
        ``OrderedSender.put_many`` (a put waits there for room when the outbox is full)."""
        sender = self.sender
        receipts = await asyncio.to_thread(sender.put_many, list(items), timeout=timeout)
        return [self._async_receipt(receipt) for receipt in receipts]

    def _async_receipt(self, receipt: Receipt) -> AsyncReceipt:
        assert self._watcher is not None
        return AsyncReceipt(receipt.message_id, receipt.lane, receipt.seq, self._watcher)

    async def flush(self, timeout: float | None = None) -> bool:
        """True once every message outside paused lanes is delivered; False on timeout.
        DeliveryError when the sender stopped for good first."""
        self._check_open()
        assert self._watcher is not None
        try:
            async with asyncio.timeout(timeout):
                return await self._watcher.flushed()
        except TimeoutError:
            return False

    async def stats(self) -> SenderStats:
        """As ``OrderedSender.stats``: after close, the final counters with the gauges as last
        read (no store read, so it does not block the loop)."""
        if self._closed and self._sender is not None:
            return self._sender.stats()
        return await self._call(self.sender.stats)

    async def counts(self) -> OutboxCounts:
        return await self._call(self.sender.counts)

    async def paused_lanes(self) -> list[PausedLane]:
        return await self._call(self.sender.paused_lanes)

    async def pause(self, lane: str, reason: str | None = None) -> bool:
        """Stop delivering a lane until ``resume``; False if it was paused already (see
        ``Outbox.pause``)."""
        return await self._call(self.sender.pause, lane, reason)

    async def resume(self, lane: str) -> bool:
        """Retry the head of a paused lane now; False if it was not paused."""
        return await self._call(self.sender.resume, lane)

    async def dead_letters(self, lane: str | None = None) -> list[DeadLetter]:
        return await self._call(self.sender.dead_letters, lane)

    async def redrive(self, message_id: str) -> bool:
        """Put a dead letter back at the head of its lane; False if there is none."""
        return await self._call(self.sender.redrive, message_id)

    async def drop(self, message_id: str) -> bool:
        """Forget a dead letter for good; False if there is none."""
        return await self._call(self.sender.drop, message_id)

    async def close(self, timeout: float | None = 30.0) -> None:
        """Stop taking puts, let requests in flight finish (up to ``timeout``), keep the rest."""
        if self._closed:
            return
        self._closed = True
        if self._sender is None:
            return
        assert self._watcher is not None
        self._watcher.stop()
        await asyncio.to_thread(self._watcher.join)
        _settle_all(self._watcher.fail_all("the sender closed first; it stays in the outbox"))
        await asyncio.to_thread(self._sender.close, timeout)

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()
