"""Delivery of one outbox: the only module that runs threads.

Data flows one way: put -> store -> scheduler picks ready lane heads -> transport -> outcomes ->
scheduler decides -> store. One dispatcher thread plans requests; a pool of ``concurrency``
workers sends them. A lane is in flight from the moment its head is planned until its outcome is
recorded, so no lane ever has two messages in flight and nothing later in a lane overtakes its
head. One Condition guards all in-memory state; the Outbox waits on it (``Changes``), so a
receipt or a blocked put wakes on each delivery instead of polling.

When the store cannot record an outcome (disk full, I/O error), the outcome is kept in memory and
its lanes stay in flight: a message whose outcome is unknown to the store is never sent again.
Delivery says so once, holds, and goes on by itself once the store records again. When the outbox
file is deleted or replaced under it, it stops for good and says why. Refused credentials and an
endpoint failing whole requests hold every lane (health.py).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass

from ordered_sender.config import SenderConfig
from ordered_sender.errors import DeliveryError, StoreError
from ordered_sender.events import log, log_request
from ordered_sender.health import Hold, Holds, Pace
from ordered_sender.outbox import Clock, Outbox, poll_seconds
from ordered_sender.outcomes import Outcome, OutcomeKind, classify, endpoint_failed
from ordered_sender.scheduler import (
    Batch,
    RetryPolicy,
    decide,
    dispatcher_wait,
    hold_partial,
    is_partial,
    plan_batches,
)
from ordered_sender.stats import StatsRecorder
from ordered_sender.store import Decision
from ordered_sender.store.open import DatabaseUrl, hold_for_delivery, outbox_target
from ordered_sender.transport import BatchResponse, RequestError, RequestErrorKind, Transport
from ordered_sender.upkeep import Upkeep

STORE_HOLD = Hold(first=0.1, most=30.0)
"""While the store cannot record: from 0.1 s, doubling, at most 30 s (monotonic time)."""
CREDENTIALS_HOLD = Hold(first=1.0, most=60.0)
"""While the credentials are refused: from 1 s, doubling, at most 60 s."""
OTHERS_LOOK_SECONDS = 0.02
"""While idle, how often the dispatcher looks whether another process put into the outbox."""


@dataclass(frozen=True, slots=True)
class Unrecorded:
    """The outcome of a request that the store could not record yet."""

    batch: Batch
    decisions: list[Decision]
    now: float


class Delivery:
    """Holds the outbox file (its lock and an Outbox on it) and delivers it; also the Outbox's
    ``Changes``. What the constructor acquires is released if a later step of it fails."""

    def __init__(
        self,
        path: str | os.PathLike[str] | DatabaseUrl,
        config: SenderConfig,
        transport: Transport,
        clock: Clock,
        *,
        create: bool,
        stats: StatsRecorder,
    ) -> None:
        self.config = config
        self.stats = stats
        self.clock = clock
        self._transport = transport
        self._changed = threading.Condition()
        self._wake = threading.Event()
        self._planning = threading.Lock()
        self._in_flight_lanes: set[str] = set()
        self._requests_in_flight = 0
        self._partial_in_flight = 0
        self._held_partial = False
        self._unrecorded: list[Unrecorded] = []
        self._holds = Holds(CREDENTIALS_HOLD, Hold(first=0.1, most=config.endpoint_backoff_max))
        self._store_hold = STORE_HOLD
        rate = config.max_requests_per_second
        self._pace = None if rate is None else Pace(rate, burst=config.concurrency)
        self.failure: str | None = None
        """Why delivery stopped for good (its outbox file deleted or replaced), else None."""
        self.closed = False
        self._release_when_idle = False
        self._released = threading.Event()
        self._dispatcher: threading.Thread | None = None
        self._workers: ThreadPoolExecutor | None = None
        self._policy = RetryPolicy(
            wait=config.retry_wait,
            stop=config.retry_stop,
            dead_letter=config.on_permanent_failure == "dead_letter",
            step_slack=config.request_timeout + config.idle_poll_seconds,
            lane_spacing=_spacing(config.max_messages_per_second_per_lane),
        )
        with ExitStack() as acquired:
            self._lock = hold_for_delivery(
                outbox_target(path), create=create, request_timeout=config.request_timeout
            )
            acquired.callback(self._lock.release)
            self.outbox = Outbox(path, config, clock=clock, create=create, changes=self)
            acquired.callback(self.outbox.close)
            self._upkeep = Upkeep(self._lock, self.outbox.store, clock, config)
            acquired.pop_all()

    @property
    def started(self) -> bool:
        return self._dispatcher is not None

    def wake(self) -> None:
        """Look at the outbox now: something was put, resumed or redriven. Not while a partial
        request is in flight: the worker that ends it plans next, with what came meanwhile."""
        if self._partial_in_flight == 0:
            self._wake.set()

    # -- the Outbox's Changes ------------------------------------------------------------------

    def watching(self) -> AbstractContextManager[object]:
        return self._changed

    def wait(self, deadline: float | None) -> bool:
        """Wait for a request to complete (caller holds ``watching()``); False once
        ``deadline`` passed."""
        seconds = poll_seconds(self.config.idle_poll_seconds, deadline)
        if seconds is None:
            return False
        self._changed.wait(seconds)
        return True

    def check(self, message_id: str = "", lane: str = "") -> None:
        if self.failure is not None:
            raise DeliveryError(message_id, lane, f"the sender stopped: {self.failure}")
        if self.closed:
            raise DeliveryError(message_id, lane, "the sender closed first; it stays in the outbox")

    # -- delivering ----------------------------------------------------------------------------

    def start(self) -> None:
        if self._dispatcher is not None:
            return
        self._workers = ThreadPoolExecutor(
            max_workers=self.config.concurrency, thread_name_prefix="ordered-sender-worker"
        )
        self._dispatcher = threading.Thread(
            target=self._dispatch_forever, name="ordered-sender-dispatcher", daemon=True
        )
        self._dispatcher.start()
        log.info("sender.started", path=str(self.outbox.path), concurrency=self.config.concurrency)

    def deliver_due(self) -> int:
        """Send, in this thread, every request due now; see ``OrderedSender.deliver_due``."""
        self._upkeep_or_stop(force=True)
        self._record_unrecorded()
        sent = 0
        while self.failure is None and (
            batches := self._plan(self._requests_allowed(), hold=False)
        ):
            for index, batch in enumerate(batches):
                self._deliver(batch)
                sent += 1
                if self.clock() < self._holds_until():
                    # A hold began (credentials refused, endpoint failing): what this round
                    # planned beyond it is not sent, as the dispatcher would not send it.
                    for skipped in batches[index + 1 :]:
                        self._request_done(skipped, release_lanes=True)
                    break
            # Raises the store's own error (the disk is full, ...) while they stay unrecorded.
            self._record_unrecorded()
        return sent

    def _holds_until(self) -> float:
        with self._changed:
            return self._holds.until

    def _requests_allowed(self) -> int:
        now = self.clock()
        with self._changed:
            allowed = self._holds.allowed(
                now=now,
                free_workers=self.config.concurrency - self._requests_in_flight,
                in_flight=self._requests_in_flight,
            )
            if self._pace is not None:
                allowed = min(allowed, self._pace.available(now))
            return allowed

    def _sending_resumes_at(self, now: float) -> float:
        """Before this nothing may be sent: the holds, and the pace of requests."""
        with self._changed:
            until = self._holds.until
            if self._pace is not None:
                until = max(until, self._pace.next_at(now))
            return until

    def _plan(self, free: int, *, hold: bool = True) -> list[Batch]:
        return self._plan_more(free, hold=hold)[0]

    def _plan_more(self, free: int, *, hold: bool = True) -> tuple[list[Batch], bool]:
        """Plan up to ``free`` requests of due lane heads and mark their lanes in flight; also
        says whether due heads may be left over, beyond those held back. Planners (the
        dispatcher, a worker going on) take turns, so no head is planned twice. With ``hold``,
        a partial request waits while another is in flight (``scheduler.hold_partial``)."""
        if free <= 0:
            return [], False
        limit = free * self.config.max_messages_per_request
        with self._planning:
            if self.closed or self.failure is not None:
                return [], False
            now = self.clock()
            with self._changed:
                busy = frozenset(self._in_flight_lanes)
            # One head more than can go: whether more are due is then known, not guessed, so a
            # worker going on wakes the dispatcher only when it left due heads behind.
            heads = self.outbox.store.ready_heads(now, busy, limit + 1)
            batches = plan_batches(
                heads,
                max_messages=self.config.max_messages_per_request,
                max_payload_bytes=self.config.max_payload_bytes_per_request,
                max_batches=free,
            )
            offered = sum(len(batch) for batch in batches)
            with self._changed:
                if self.closed:  # closing began during the query: plan nothing more
                    return [], False
                if hold:
                    batches, self._held_partial = hold_partial(
                        batches,
                        partial_in_flight=self._partial_in_flight,
                        max_messages=self.config.max_messages_per_request,
                        max_payload_bytes=self.config.max_payload_bytes_per_request,
                    )
                for batch in batches:
                    self._in_flight_lanes.update(head.lane for head in batch)
                    self._partial_in_flight += self._is_partial(batch)
                self._requests_in_flight += len(batches)
                if self._pace is not None and batches:
                    self._pace = self._pace.took(now, len(batches))
        return batches, offered < len(heads)

    def _is_partial(self, batch: Batch) -> bool:
        return is_partial(
            batch,
            max_messages=self.config.max_messages_per_request,
            max_payload_bytes=self.config.max_payload_bytes_per_request,
        )

    def _dispatch_forever(self) -> None:
        while not self.closed and self.failure is None:
            self._wake.clear()
            try:
                self._idle(self._dispatch_once())
            except StoreError as error:
                self._wake.wait(self._store_failed(error))
            except Exception:
                # A bug, not a fault of the disk or the network: say so loudly, then go on.
                log.exception("dispatcher.error")
                self._wake.wait(self.config.idle_poll_seconds)

    def _idle(self, seconds: float) -> None:
        """Wait up to ``seconds`` for a wake-up: from this process (a put, a finished request),
        or from another one, whose commits a cheap look notices every few milliseconds."""
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            if self._wake.wait(min(remaining, OTHERS_LOOK_SECONDS)):
                return
            if self.outbox.store.changed_elsewhere():
                return

    def _dispatch_once(self) -> float:
        """Plan and hand out what is due; returns how long to wait for a wake-up before looking
        again."""
        assert self._workers is not None
        if self._upkeep_or_stop():
            return 0.0
        if time.monotonic() < self._store_hold.until:
            return self._store_hold.until - time.monotonic()
        self._record_unrecorded()
        batches = self._plan(self._requests_allowed())
        self._store_recovered()  # it answered: if it had failed, say it works again
        for batch in batches:
            self._workers.submit(self._work, batch)
        if batches:
            return 0.0
        with self._changed:
            busy = frozenset(self._in_flight_lanes)
            in_flight = self._requests_in_flight
            probing = self._holds.endpoint.failing and in_flight > 0
            # Held behind a partial request in flight: its end wakes the dispatcher.
            waiting = probing or (self._held_partial and self._partial_in_flight > 0)
            free = 0 if waiting else self.config.concurrency - in_flight
        now = self.clock()
        return dispatcher_wait(
            free_workers=free,
            next_due=self.outbox.store.next_attempt_at(busy) if free > 0 else None,
            now=now,
            halted_until=self._sending_resumes_at(now),
            poll=self.config.idle_poll_seconds,
        )

    def _work(self, batch: Batch) -> None:
        """A worker: deliver a request; then, while the outcome was recorded and more is due,
        plan the next request itself and deliver it too. A lane's next message so goes out as
        soon as its head's outcome is stored, without a round through the dispatcher, which is
        woken only when this worker stops or may have left due work behind."""
        next_batch: Batch | None = batch
        try:
            while next_batch is not None:
                recorded = self._deliver(next_batch, wake=False)
                next_batch = self._next_request() if recorded else None
        finally:
            self._wake.set()

    def _next_request(self) -> Batch | None:
        """Plan one request for the worker that just finished one, when sending may go on."""
        if self.closed or self.failure is not None:
            return None
        if time.monotonic() < self._store_hold.until:
            return None
        try:
            batches, more = self._plan_more(min(1, self._requests_allowed()))
        except StoreError:
            return None  # the dispatcher meets it too, and holds
        if more:
            self._wake.set()
        return batches[0] if batches else None

    def _deliver(self, batch: Batch, *, wake: bool = True) -> bool:
        """Send one request and record what came of it; the lanes are released only after that.
        True when the outcome was recorded."""
        ids = [head.message.message_id for head in batch]
        recorded = False
        try:
            started = time.monotonic()
            response = self._send(batch)
            latency_ms = round((time.monotonic() - started) * 1000, 1)
            now = self.clock()
            outcomes = classify(response, ids)
            self._judge(response, endpoint_failed(outcomes), now)
            decisions = decide(self._as_stored_now(batch, outcomes), outcomes, now, self._policy)
            self.stats.request_decided(decisions, latency_ms)
            try:
                self.outbox.store.apply(decisions, now)
            except StoreError as error:
                with self._changed:
                    self._unrecorded.append(Unrecorded(batch, decisions, now))
                self._store_failed(error)
                return False
            recorded = True
            self._store_recovered()
            log_request(batch, response, decisions, latency_ms, now)
        finally:
            self._request_done(batch, release_lanes=recorded, wake=wake)
        return True

    def _as_stored_now(self, batch: Batch, outcomes: Mapping[str, Outcome]) -> Batch:
        """The heads as stored now when an attempt failed: a ``resume`` while they were in
        flight (by this process or another) reset their attempts, and the failure is judged
        from those. Deliveries need no second look."""
        if all(outcomes[h.message.message_id].kind is OutcomeKind.DELIVERED for h in batch):
            return batch
        try:
            now_stored = {
                m.seq: m for m in self.outbox.store.pending_messages([h.seq for h in batch])
            }
        except StoreError:
            return batch  # recording the outcome meets the store's fault next, and holds
        return tuple(now_stored.get(head.seq, head) for head in batch)

    def _send(self, batch: Batch) -> BatchResponse:
        try:
            return self._transport.send([head.message for head in batch])
        except Exception as error:
            # No transport should raise: this one met something nobody mapped. The outcome is
            # unknown, so the same ids go again behind the endpoint's hold; the traceback says
            # what to map.
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

    def _judge(self, response: BatchResponse, failed: bool, now: float) -> None:
        """Move the sender-wide holds by this answer, and say when one begins or ends."""
        refused = response.request_error
        credentials = refused is not None and refused.kind is RequestErrorKind.CREDENTIALS
        with self._changed:
            before = self._holds
            self._holds = before.after(
                credentials_refused=credentials, endpoint_failed=failed, now=now
            )
            after = self._holds
        code = None if refused is None else refused.code
        if after.credentials.failing and not before.credentials.failing:
            log.error("sender.halted", error_code=code, retry_in_s=after.credentials.seconds)
        if after.endpoint.failing and not before.endpoint.failing:
            log.warning("endpoint.unavailable", error_code=code, probe_in_s=after.endpoint.seconds)
        if before.endpoint.failing and not after.endpoint.failing:
            log.warning("endpoint.available")

    def _request_done(self, batch: Batch, *, release_lanes: bool, wake: bool = True) -> None:
        with self._changed:
            if release_lanes:
                self._in_flight_lanes.difference_update(head.lane for head in batch)
            self._requests_in_flight -= 1
            self._partial_in_flight -= self._is_partial(batch)
            release_now = self._release_when_idle and self._requests_in_flight == 0
            self._changed.notify_all()
        self.stats.request_finished(head.lane for head in batch)
        if wake:
            self._wake.set()
        if release_now:
            self._release()

    # -- faults of the store and the file ------------------------------------------------------

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
                path=str(self.outbox.path),
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
            log.warning("outbox.available", path=str(self.outbox.path))

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

    def _upkeep_or_stop(self, *, force: bool = False) -> bool:
        """Run the upkeep when due; True when delivery had to stop for good."""
        problem = self._upkeep.run(force=force)
        if problem is None:
            return False
        with self._changed:
            self.failure = problem
            self._changed.notify_all()
        log.error("sender.stopped", path=str(self.outbox.path), reason=problem)
        return True

    # -- closing -------------------------------------------------------------------------------

    def close(self, timeout: float | None) -> None:
        """See ``OrderedSender.close``."""
        with self._changed:
            if self.closed:
                return
            self.closed = True
            self._changed.notify_all()
        self._wake.set()
        if self._dispatcher is not None:
            self._dispatcher.join()
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while self._requests_in_flight and self.wait(deadline):
                pass
            in_flight = self._requests_in_flight
            self._release_when_idle = in_flight > 0
        if self._workers is not None:
            self._workers.shutdown(wait=False, cancel_futures=True)
        if in_flight:
            log.warning(
                "sender.close_deferred",
                path=str(self.outbox.path),
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
            with self._planning:  # a worker still planning finishes its query first
                self.outbox.close()
            self._lock.release()
            self._released.set()
        log.info("sender.closed", path=str(self.outbox.path), pending=pending)

    def wait_closed(self, timeout: float | None) -> bool:
        return self._released.wait(timeout)


EDGE_SECONDS = 0.001
"""Added to a lane's spacing, so that a quota counted over a sliding second (10 messages per
detector) is never met exactly at its edge, where clock rounding decides."""


def _spacing(rate: float | None) -> float:
    return 0.0 if rate is None else 1.0 / rate + EDGE_SECONDS
