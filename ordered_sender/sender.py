"""OrderedSender: delivery of an outbox, and the only module that runs threads.

Data flows one way: put -> store -> scheduler picks ready lane heads -> transport -> outcomes ->
scheduler decides -> store. One dispatcher thread plans requests; a pool of ``concurrency``
workers sends them. A lane is in flight from the moment its head is planned until its outcome is
committed, so no lane ever has two messages in flight and nothing later in a lane overtakes its
head. One Condition guards all in-memory state.

When the store cannot record an outcome (disk full, I/O error), the outcome is kept in memory and
its lanes stay in flight: a message whose outcome is unknown to the store is never sent again.
The sender says so once, backs off, and goes on by itself once the store records again. When the
outbox file is deleted or replaced under it, it stops delivering for good and says why.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from ordered_sender.config import SenderConfig
from ordered_sender.errors import DeliveryError, SenderClosed, StoreError
from ordered_sender.events import log, log_request
from ordered_sender.health import Hold, held_until, requests_allowed
from ordered_sender.outbox import Clock, Outbox, PutItem, Receipt, poll_seconds, wall_clock
from ordered_sender.outcomes import Outcome, classify, endpoint_failed
from ordered_sender.scheduler import Batch, RetryPolicy, decide, dispatcher_wait, plan_batches
from ordered_sender.store import DeadLetter, Decision, OutboxCounts, PausedLane
from ordered_sender.store.lock import OutboxLock
from ordered_sender.transport import BatchResponse, RequestError, RequestErrorKind, Transport
from ordered_sender.transport.iotevents import IotEventsTransport, build_client

STORE_HOLD = Hold(first=0.1, most=30.0)
"""While the store cannot record: from 0.1 s, doubling, at most 30 s (monotonic time)."""
CREDENTIALS_HOLD = Hold(first=1.0, most=60.0)
"""While the credentials are refused: from 1 s, doubling, at most 60 s."""
HOUSEKEEPING_SECONDS = 1.0
"""How often the dispatcher checks the outbox file and the clock."""
FORGET_SECONDS = 60.0
"""How often delivered ids past the retention are forgotten."""


@dataclass(frozen=True, slots=True)
class Unrecorded:
    """The outcome of a request that the store could not record yet."""

    batch: Batch
    decisions: list[Decision]
    now: float


class OrderedSender:
    """Durable, per-lane ordered delivery to IoT Events' BatchPutMessage.

    ``client`` is a boto3 ``iotevents-data`` client; None builds one from the environment with
    botocore's retries off. ``transport`` replaces the boto3 transport entirely (tests, other
    backends). With ``autostart=False`` nothing is sent until ``start()`` or ``deliver_due()``.
    ``create=False`` refuses (NotAnOutbox) a file that is not an outbox already.
    Other processes may put into its file with an ``Outbox`` while it delivers.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        client: Any = None,
        config: SenderConfig | None = None,
        *,
        transport: Transport | None = None,
        clock: Clock = wall_clock,
        autostart: bool = True,
        create: bool = True,
    ) -> None:
        self.config = config or SenderConfig()
        self.clock = clock
        self._changed = threading.Condition()
        self._wake = threading.Event()
        self._in_flight_lanes: set[str] = set()
        self._requests_in_flight = 0
        self._unrecorded: list[Unrecorded] = []
        self._credentials = CREDENTIALS_HOLD
        self._endpoint = Hold(first=0.1, most=self.config.endpoint_backoff_max)
        self._store_hold = STORE_HOLD
        self._failure: str | None = None
        self._closed = False
        self._stopping = False
        self._release_when_idle = False
        self._released = threading.Event()
        self._dispatcher: threading.Thread | None = None
        self._workers: ThreadPoolExecutor | None = None
        self._policy = RetryPolicy(
            wait=self.config.retry_wait,
            stop=self.config.retry_stop,
            dead_letter=self.config.on_permanent_failure == "dead_letter",
            step_slack=self.config.request_timeout + self.config.idle_poll_seconds,
        )
        if transport is None:
            if client is None:
                client = build_client(timeout=self.config.request_timeout)
            transport = IotEventsTransport(client)
        self._transport = transport
        # What the constructor acquires is released if a later step of it fails.
        with ExitStack() as acquired:
            self._lock = OutboxLock(Path(path), create=create)
            acquired.callback(self._lock.release)
            self.outbox = Outbox(
                path, self.config, clock=clock, create=create, changes=_SenderChanges(self)
            )
            acquired.callback(self.outbox.close)
            now = self.clock()
            self.outbox.store.clamp_retries(now)
            self._clock_offset = now - time.monotonic()
            self._next_housekeeping = time.monotonic() + HOUSEKEEPING_SECONDS
            self._forget_old_deliveries()
            if autostart:
                self.start()
            acquired.pop_all()

    # -- the outbox's side, through the sender -------------------------------------------------

    @property
    def path(self) -> Path:
        return self.outbox.path

    @property
    def store(self) -> Any:
        return self.outbox.store

    @property
    def failure(self) -> str | None:
        """Why the sender stopped delivering for good (its outbox file deleted or replaced)."""
        return self._failure

    def put(
        self,
        input_name: str,
        payload: object,
        *,
        message_id: str | None = None,
        timestamp_ms: int | None = None,
        timeout: float | None = None,
    ) -> Receipt:
        """Commit one message and return once it is on disk; see ``Outbox.put_many``."""
        return self.put_many([(input_name, payload, message_id, timestamp_ms)], timeout=timeout)[0]

    def put_many(self, items: Iterable[PutItem], *, timeout: float | None = None) -> list[Receipt]:
        self._check_open()
        receipts = self.outbox.put_many(items, timeout=timeout)
        self._wake.set()
        return receipts

    put_many.__doc__ = Outbox.put_many.__doc__

    def resume(self, lane: str) -> bool:
        """Retry the head of a paused lane now, attempts and age reset; False if not paused."""
        self._check_open()
        resumed = self.outbox.resume(lane)
        self._wake.set()
        return resumed

    def redrive(self, message_id: str) -> bool:
        self._check_open()
        redriven = self.outbox.redrive(message_id)
        self._wake.set()
        return redriven

    redrive.__doc__ = Outbox.redrive.__doc__

    def drop(self, message_id: str) -> bool:
        self._check_open()
        return self.outbox.drop(message_id)

    drop.__doc__ = Outbox.drop.__doc__

    def dead_letters(self, lane: str | None = None) -> list[DeadLetter]:
        self._check_open()
        return self.outbox.dead_letters(lane)

    def paused_lanes(self) -> list[PausedLane]:
        self._check_open()
        return self.outbox.paused_lanes()

    def counts(self) -> OutboxCounts:
        self._check_open()
        return self.outbox.counts()

    def wait_delivered(self, message_id: str, timeout: float | None = None) -> None:
        self.outbox.wait_delivered(message_id, timeout)

    wait_delivered.__doc__ = Outbox.wait_delivered.__doc__

    def flush(self, timeout: float | None = None) -> bool:
        """True once every message outside paused lanes is delivered; False on timeout.
        DeliveryError when the sender stopped for good first."""
        self._check_open()
        if self._dispatcher is None:
            raise RuntimeError(
                "flush() waits for background delivery: call start() first, or deliver_due()"
            )
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while True:
                if self.outbox.store.deliverable_lanes() == 0:
                    return True
                self._check_delivering()
                if not self._wait_changed(deadline):
                    return False

    def _check_open(self) -> None:
        if self._closed:
            raise SenderClosed(f"the sender on {self.path} is closed; open a new one to go on")

    def _check_delivering(self, message_id: str = "", lane: str = "") -> None:
        if self._failure is not None:
            raise DeliveryError(message_id, lane, f"the sender stopped: {self._failure}")
        if self._closed:
            raise DeliveryError(message_id, lane, "the sender closed first; it stays in the outbox")

    def _wait_changed(self, deadline: float | None) -> bool:
        """Wait for a request to complete (caller holds ``_changed``); False once ``deadline``
        passed."""
        seconds = poll_seconds(self.config.idle_poll_seconds, deadline)
        if seconds is None:
            return False
        self._changed.wait(seconds)
        return True

    # -- delivering ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start delivering in the background (done by the constructor unless autostart=False)."""
        self._check_open()
        if self._dispatcher is not None:
            return
        self._workers = ThreadPoolExecutor(
            max_workers=self.config.concurrency, thread_name_prefix="ordered-sender-worker"
        )
        self._dispatcher = threading.Thread(
            target=self._dispatch_forever, name="ordered-sender-dispatcher", daemon=True
        )
        self._dispatcher.start()
        log.info("sender.started", path=str(self.path), concurrency=self.config.concurrency)

    def deliver_due(self) -> int:
        """Send, in this thread, every request that is due now; returns how many were sent.

        For callers that drive delivery themselves (``autostart=False``), such as tests with an
        injected clock. Loops until nothing is due, as each delivery may make a lane's next head
        due. Raises StoreError while the store cannot record.
        """
        self._check_open()
        if self._dispatcher is not None:
            raise RuntimeError(
                "deliver_due() is for senders made with autostart=False that were not started; "
                "this one delivers in the background already"
            )
        self._housekeeping(force=True)
        self._record_unrecorded()
        sent = 0
        while self._failure is None and (batches := self._plan(self._requests_allowed())):
            for index, batch in enumerate(batches):
                self._deliver(batch)
                sent += 1
                if self.clock() < self._held_until():
                    # A hold began (credentials refused, endpoint failing): what this round
                    # planned beyond it is not sent, as the dispatcher would not send it.
                    for skipped in batches[index + 1 :]:
                        self._request_done(skipped, release_lanes=True)
                    break
            # Raises the store's own error (the disk is full, ...) while they stay unrecorded.
            self._record_unrecorded()
        return sent

    def _held_until(self) -> float:
        with self._changed:
            return held_until(self._credentials, self._endpoint)

    def _requests_allowed(self) -> int:
        with self._changed:
            return requests_allowed(
                now=self.clock(),
                free_workers=self.config.concurrency - self._requests_in_flight,
                in_flight=self._requests_in_flight,
                credentials=self._credentials,
                endpoint=self._endpoint,
            )

    def _plan(self, free: int) -> list[Batch]:
        if free <= 0:
            return []
        now = self.clock()
        with self._changed:
            busy = frozenset(self._in_flight_lanes)
        heads = self.outbox.store.ready_heads(
            now, busy, free * self.config.max_messages_per_request
        )
        batches = plan_batches(
            heads,
            max_messages=self.config.max_messages_per_request,
            max_payload_bytes=self.config.max_payload_bytes_per_request,
            max_batches=free,
        )
        with self._changed:
            for batch in batches:
                self._in_flight_lanes.update(head.lane for head in batch)
            self._requests_in_flight += len(batches)
        return batches

    def _dispatch_forever(self) -> None:
        assert self._workers is not None
        while not self._stopping and self._failure is None:
            self._wake.clear()
            try:
                self._wake.wait(self._dispatch_once())
            except StoreError as error:
                self._wake.wait(self._store_failed(error))
            except Exception:
                # A bug, not a fault of the disk or the network: say so loudly, then go on.
                log.exception("dispatcher.error")
                self._wake.wait(self.config.idle_poll_seconds)

    def _dispatch_once(self) -> float:
        """Plan and hand out what is due; returns how long to wait for a wake-up before looking
        again."""
        assert self._workers is not None
        self._housekeeping()
        if self._failure is not None:
            return 0.0
        if time.monotonic() < self._store_hold.until:
            return self._store_hold.until - time.monotonic()
        self._record_unrecorded()
        batches = self._plan(self._requests_allowed())
        self._store_recovered()  # it answered: if it had failed, say it works again
        for batch in batches:
            self._workers.submit(self._deliver, batch)
        if batches:
            return 0.0
        with self._changed:
            busy = frozenset(self._in_flight_lanes)
            in_flight = self._requests_in_flight
            probing = self._endpoint.failing and in_flight > 0
            free = 0 if probing else self.config.concurrency - in_flight
            holds = held_until(self._credentials, self._endpoint)
        return dispatcher_wait(
            free_workers=free,
            next_due=self.outbox.store.next_attempt_at(busy) if free > 0 else None,
            now=self.clock(),
            halted_until=holds,
            poll=self.config.idle_poll_seconds,
        )

    def _deliver(self, batch: Batch) -> None:
        """Send one request and record what came of it; the lanes are released only after that."""
        ids = [head.message.message_id for head in batch]
        recorded = False
        try:
            started = time.monotonic()
            response = self._send(batch)
            latency_ms = round((time.monotonic() - started) * 1000, 1)
            now = self.clock()
            outcomes = classify(response, ids)
            self._judge_endpoint(response, outcomes, now)
            decisions = decide(batch, outcomes, now, self._policy)
            try:
                self.outbox.store.apply(decisions, now)
            except StoreError as error:
                with self._changed:
                    self._unrecorded.append(Unrecorded(batch, decisions, now))
                self._store_failed(error)
                return
            recorded = True
            self._store_recovered()
            log_request(batch, response, decisions, latency_ms, now)
        finally:
            self._request_done(batch, release_lanes=recorded)

    def _send(self, batch: Batch) -> BatchResponse:
        try:
            return self._transport.send([head.message for head in batch])
        except Exception as error:
            # No transport should raise: this one met something nobody mapped. The outcome is
            # unknown, so the same ids go again after backoff; the traceback says what to map.
            log.exception(
                "transport.unexpected_error",
                message_ids=[head.message.message_id for head in batch],
                error_type=type(error).__name__,
            )
            return BatchResponse(
                request_error=RequestError(
                    RequestErrorKind.UNEXPECTED, type(error).__name__, str(error)
                )
            )

    def _judge_endpoint(
        self, response: BatchResponse, outcomes: dict[str, Outcome], now: float
    ) -> None:
        """Hold every lane while the credentials are refused or the endpoint fails whole
        requests; release the holds on any other answer."""
        refused = response.request_error
        credentials = refused is not None and refused.kind is RequestErrorKind.CREDENTIALS
        failed = endpoint_failed(outcomes)
        with self._changed:
            was = (self._credentials.failing, self._endpoint.failing)
            self._credentials = (
                self._credentials.failed(now) if credentials else self._credentials.succeeded()
            )
            if failed:
                self._endpoint = self._endpoint.failed(now)
            elif not credentials:
                self._endpoint = self._endpoint.succeeded()
            credentials_hold, endpoint_hold = self._credentials.seconds, self._endpoint.seconds
        code = None if refused is None else refused.code
        if credentials and not was[0]:
            log.error("sender.halted", error_code=code, retry_in_s=credentials_hold)
        if failed and not was[1]:
            log.warning("endpoint.unavailable", error_code=code, probe_in_s=endpoint_hold)
        if was[1] and not failed and not credentials:
            log.warning("endpoint.available")

    def _request_done(self, batch: Batch, *, release_lanes: bool) -> None:
        with self._changed:
            if release_lanes:
                self._in_flight_lanes.difference_update(head.lane for head in batch)
            self._requests_in_flight -= 1
            release_now = self._release_when_idle and self._requests_in_flight == 0
            self._changed.notify_all()
        self._wake.set()
        if release_now:
            self._release()

    # -- faults of the store, the file and the clock -------------------------------------------

    def _store_failed(self, error: StoreError) -> float:
        """Stop sending until the store records again; returns the hold. Said once."""
        with self._changed:
            first = not self._store_hold.failing
            self._store_hold = self._store_hold.failed(time.monotonic())
            hold = self._store_hold.seconds
            unrecorded = sum(len(u.batch) for u in self._unrecorded)
        if first:
            log.error(
                "outbox.unavailable",
                path=str(self.path),
                error=error.problem,
                unrecorded_outcomes=unrecorded,
                retry_in_s=hold,
            )
        else:
            log.debug("outbox.still_unavailable", error=error.problem, retry_in_s=hold)
        self._wake.set()
        return hold

    def _store_recovered(self) -> None:
        with self._changed:
            was_failing = self._store_hold.failing
            self._store_hold = self._store_hold.succeeded()
        if was_failing:
            log.warning("outbox.available", path=str(self.path))

    def _record_unrecorded(self) -> None:
        """Record the outcomes the store refused before; their lanes go free only then."""
        with self._changed:
            pending = list(self._unrecorded)
        for item in pending:
            self.outbox.store.apply(item.decisions, item.now)
            with self._changed:
                self._unrecorded.remove(item)
                self._in_flight_lanes.difference_update(head.lane for head in item.batch)
                self._changed.notify_all()
        if pending:
            self._store_recovered()

    def _housekeeping(self, *, force: bool = False) -> None:
        """About once a second: is the outbox file still ours, did the clock jump back?"""
        if not force and time.monotonic() < self._next_housekeeping:
            return
        self._next_housekeeping = time.monotonic() + HOUSEKEEPING_SECONDS
        problem = self._lock.problem()
        if problem is not None:
            self._stop_for_good(problem)
            return
        now = self.clock()
        offset = now - time.monotonic()
        if offset < self._clock_offset - 1.0:
            moved = self.outbox.store.clamp_retries(now)
            log.warning(
                "clock.moved_back", seconds=round(self._clock_offset - offset, 1), retries=moved
            )
        self._clock_offset = offset
        if time.monotonic() >= self._next_forget_at:
            self._forget_old_deliveries()

    def _forget_old_deliveries(self) -> None:
        """Drop delivered ids past the retention; a daemon does this about once a minute."""
        self.outbox.store.forget_delivered(self.clock() - self.config.delivered_retention_seconds)
        self._next_forget_at = time.monotonic() + FORGET_SECONDS

    def _stop_for_good(self, problem: str) -> None:
        with self._changed:
            self._failure = problem
            self._changed.notify_all()
        log.error("sender.stopped", path=str(self.path), reason=problem)

    # -- closing -------------------------------------------------------------------------------

    def close(self, timeout: float | None = 30.0) -> None:
        """Stop taking puts, let requests in flight finish (up to ``timeout``), keep the rest.

        A request still in flight after ``timeout`` keeps the outbox open and locked until it
        ends (at most ``request_timeout``), so that its outcome is recorded and no other sender
        can send its lane meanwhile.
        """
        with self._changed:
            if self._closed:
                return
            self._closed = True
            self._stopping = True
            self._changed.notify_all()
        self._wake.set()
        if self._dispatcher is not None:
            self._dispatcher.join()
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while self._requests_in_flight and self._wait_changed(deadline):
                pass
            in_flight = self._requests_in_flight
            self._release_when_idle = in_flight > 0
        if self._workers is not None:
            self._workers.shutdown(wait=False, cancel_futures=True)
        if in_flight:
            log.warning(
                "sender.close_deferred",
                path=str(self.path),
                requests_in_flight=in_flight,
                detail="the outbox stays locked until they end",
            )
            return
        self._release()

    def _release(self) -> None:
        """The last step of closing, run when no request is in flight any more."""
        pending: int | None = None
        try:
            self._record_unrecorded()
            pending = self.outbox.store.counts().pending
        except StoreError as error:
            lost = sum(len(u.batch) for u in self._unrecorded)
            log.error(
                "sender.outcomes_lost",
                error=error.problem,
                messages=lost,
                detail="they will be sent again, with the same ids, by the next sender",
            )
        finally:
            self.outbox.close()
            self._lock.release()
            self._released.set()
        log.info("sender.closed", path=str(self.path), pending=pending)

    def wait_closed(self, timeout: float | None = None) -> bool:
        """After ``close()``: True once the outbox file is released (closed and unlocked), False
        if ``timeout`` passed first. Only a request that outlived close's timeout delays it."""
        return self._released.wait(timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class _SenderChanges:
    """The Outbox's waits, woken by this sender's deliveries instead of polling."""

    def __init__(self, sender: OrderedSender) -> None:
        self._sender = sender

    def watching(self) -> contextlib.AbstractContextManager[object]:
        return self._sender._changed

    def wait(self, deadline: float | None) -> bool:
        return self._sender._wait_changed(deadline)

    def check(self, message_id: str, lane: str) -> None:
        self._sender._check_delivering(message_id, lane)
