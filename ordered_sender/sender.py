"""OrderedSender: the public face of the library, and the only module that runs threads.

It wires the parts together; data flows one way:
put -> store -> scheduler picks ready lane heads -> transport -> outcomes -> scheduler decides
-> store.
One dispatcher thread plans requests; a pool of ``concurrency`` workers sends them. A lane is
marked in flight from the moment its head is planned until the outcome is committed, so no lane
ever has two messages in flight, and nothing later in a lane can overtake its head.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ordered_sender.config import SenderConfig
from ordered_sender.errors import DeliveryError, SenderClosed
from ordered_sender.events import log, log_request
from ordered_sender.outbox import Clock, Outbox, PutItem, Receipt, wall_clock
from ordered_sender.outcomes import classify
from ordered_sender.scheduler import Batch, RetryPolicy, decide, plan_batches
from ordered_sender.store import Retry
from ordered_sender.store.lock import OutboxLock
from ordered_sender.transport import BatchResponse, RequestError, RequestErrorKind, Transport
from ordered_sender.transport.iotevents import IotEventsTransport, build_client


class OrderedSender(Outbox):
    """Durable, per-lane ordered delivery to IoT Events' BatchPutMessage.

    ``client`` is a boto3 ``iotevents-data`` client; None builds one from the environment with
    botocore's retries off. ``transport`` replaces the boto3 transport entirely (tests, other
    backends). With ``autostart=False`` nothing is sent until ``start()`` or ``deliver_due()``.
    It is an Outbox that also delivers: other processes may put into its file with an Outbox.
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
    ) -> None:
        self._outbox_lock = OutboxLock(Path(path))
        super().__init__(path, config, clock=clock)
        if transport is None:
            if client is None:
                client = build_client(timeout=self.config.request_timeout)
            transport = IotEventsTransport(client)
        self._transport = transport
        self._policy = RetryPolicy(wait=self.config.retry_wait, stop=self.config.retry_stop)
        self._changed = threading.Condition()
        self._wake = threading.Event()
        self._in_flight_lanes: set[str] = set()
        self._requests_in_flight = 0
        self._halted_until = 0.0
        self._next_forget_at = 0.0
        self._closed = False
        self._stopping = False
        self._dispatcher: threading.Thread | None = None
        self._workers: ThreadPoolExecutor | None = None
        self._forget_old_deliveries()
        if autostart:
            self.start()

    # -- putting -------------------------------------------------------------------------------

    def put_many(self, items: Iterable[PutItem]) -> list[Receipt]:
        if self._closed:
            raise SenderClosed(f"the sender on {self.path} is closed; open a new one to put")
        receipts = super().put_many(items)
        self._wake.set()
        return receipts

    put_many.__doc__ = Outbox.put_many.__doc__

    # -- operating -----------------------------------------------------------------------------

    def resume(self, lane: str) -> bool:
        """Retry the head of a paused lane now; False if the lane was not paused."""
        resumed = super().resume(lane)
        if resumed:
            self._wake.set()
        return resumed

    def wait_delivered(self, message_id: str, timeout: float | None = None) -> None:
        # Holding the condition from each look until the wait, no delivery goes unnoticed between.
        with self._changed:
            super().wait_delivered(message_id, timeout)

    def _check_deliverable(self, message_id: str, lane: str) -> None:
        if self._closed:
            raise DeliveryError(message_id, lane, "the sender closed first; it stays in the outbox")

    def flush(self, timeout: float | None = None) -> bool:
        """True once every message outside paused lanes is delivered; False on timeout."""
        if self._dispatcher is None:
            raise RuntimeError(
                "flush() waits for background delivery: call start() first, or deliver_due()"
            )
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while True:
                if self.store.deliverable_lanes() == 0:
                    return True
                if not self._wait_for_change(deadline):
                    return False

    def _wait_for_change(self, deadline: float | None) -> bool:
        """Wait until a request completes (caller holds ``_changed``); False once the deadline
        passed."""
        seconds = self._poll_seconds(deadline)
        if seconds is None:
            return False
        self._changed.wait(seconds)
        return True

    # -- delivering ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start delivering in the background (done by the constructor unless autostart=False)."""
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
        due.
        """
        if self._dispatcher is not None:
            raise RuntimeError(
                "deliver_due() is for senders made with autostart=False that were not started; "
                "this one delivers in the background already"
            )
        sent = 0
        while batches := self._plan(self.config.concurrency):
            for batch in batches:
                self._deliver(batch)
            sent += len(batches)
        return sent

    def _plan(self, free: int) -> list[Batch]:
        now = self.clock()
        if now < self._halted_until:
            return []
        with self._changed:
            busy = frozenset(self._in_flight_lanes)
        heads = self.store.ready_heads(now, busy, free * self.config.max_messages_per_request)
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

    def _forget_old_deliveries(self) -> None:
        """Drop delivered ids past the retention; a daemon does this about once a minute."""
        self.store.forget_delivered(self.clock() - self.config.delivered_retention_seconds)
        self._next_forget_at = time.monotonic() + 60.0

    def _dispatch_forever(self) -> None:
        assert self._workers is not None
        while not self._stopping:
            self._wake.clear()
            try:
                if time.monotonic() >= self._next_forget_at:
                    self._forget_old_deliveries()
                with self._changed:
                    free = self.config.concurrency - self._requests_in_flight
                batches = self._plan(free) if free > 0 else []
                for batch in batches:
                    self._workers.submit(self._deliver, batch)
                if not batches:
                    self._wake.wait(self._idle_seconds())
            except Exception:
                # The outbox may be briefly unavailable (disk full, locked by a backup); the
                # messages are safe on disk, so log, wait a poll interval and look again.
                log.exception("dispatcher.error")
                self._wake.wait(self.config.idle_poll_seconds)

    def _idle_seconds(self) -> float:
        """How long to sleep when nothing is ready: until the next retry is due, at most the
        poll."""
        with self._changed:
            busy = frozenset(self._in_flight_lanes)
        due = self.store.next_attempt_at(busy)
        now = self.clock()
        wait = self.config.idle_poll_seconds
        if due is not None:
            wait = min(wait, max(due, self._halted_until) - now)
        return max(wait, 0.001)

    def _deliver(self, batch: Batch) -> None:
        """Send one request and commit what came of it; the lanes are released only after that."""
        ids = [head.message.message_id for head in batch]
        try:
            started = time.monotonic()
            try:
                response = self._transport.send([head.message for head in batch])
            except (
                Exception
            ) as error:  # a Transport must not raise; if one does, the outcome is unknown
                response = BatchResponse(
                    request_error=RequestError(
                        RequestErrorKind.CONNECTION, type(error).__name__, str(error)
                    )
                )
            latency_ms = round((time.monotonic() - started) * 1000, 1)
            now = self.clock()
            decisions = decide(batch, classify(response, ids), now, self._policy)
            self.store.apply(decisions, now)
            refused = response.request_error
            if refused is not None and refused.kind is RequestErrorKind.CREDENTIALS:
                # Every lane would fail the same way: hold all sending until the backoff passes.
                retry_at = min(d.next_attempt_at for d in decisions if isinstance(d, Retry))
                self._halted_until = retry_at
                log.error("sender.halted", error_code=refused.code, retry_in_s=retry_at - now)
            log_request(batch, response, decisions, latency_ms, now)
        except Exception:
            log.exception("batch.failed", message_ids=ids)
        finally:
            with self._changed:
                self._in_flight_lanes.difference_update(head.lane for head in batch)
                self._requests_in_flight -= 1
                self._changed.notify_all()
            self._wake.set()

    # -- closing -------------------------------------------------------------------------------

    def close(self, timeout: float | None = 30.0) -> None:
        """Stop taking puts, let requests in flight finish (up to ``timeout``), keep the rest."""
        if self._closed:
            return
        self._closed = True
        self._stopping = True
        self._wake.set()
        if self._dispatcher is not None:
            self._dispatcher.join()
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while self._requests_in_flight and self._wait_for_change(deadline):
                pass
            self._changed.notify_all()
        if self._workers is not None:
            self._workers.shutdown(wait=self._requests_in_flight == 0, cancel_futures=True)
        counts = self.store.counts()
        super().close()
        self._outbox_lock.release()
        log.info("sender.closed", path=str(self.path), pending=counts.pending)
