"""OrderedSender: the public face of delivery. It holds its parts by composition: an Outbox for
the put side, a Delivery (delivery.py, the only module with threads) that holds the outbox file
and delivers it, and a Transport to IoT Events. Nothing here runs a thread or decides anything.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from contextlib import ExitStack, suppress
from types import TracebackType
from typing import Any, Self

from ordered_sender.config import SenderConfig
from ordered_sender.delivery import Delivery
from ordered_sender.errors import SenderClosed, StoreError
from ordered_sender.outbox import Clock, Outbox, PutItem, Receipt, wall_clock
from ordered_sender.stats import SenderStats, StatsRecorder
from ordered_sender.store import DeadLetter, OutboxCounts, PausedLane, Store
from ordered_sender.store.open import DatabaseUrl, OutboxTarget
from ordered_sender.transport import Transport
from ordered_sender.transport.http import HttpTransport
from ordered_sender.transport.iotevents import IotEventsTransport


class OrderedSender:
    """Durable, per-lane ordered delivery to IoT Events' BatchPutMessage.

    With neither ``client`` nor ``transport``, requests go through ``HttpTransport`` (the lean
    transport: botocore's credentials and signer, its own HTTP) configured from the environment
    as boto3 would be. ``client`` is a boto3 ``iotevents-data`` client to send through instead
    (``build_client`` makes one with botocore's retries off). ``transport`` replaces both (tests,
    other backends). The sender owns its transport: ``close()`` closes it when it has a
    ``close`` method, as does a constructor that fails. With ``autostart=False`` nothing is
    sent until ``start()`` or ``deliver_due()``.
    ``create=False`` refuses (NotAnOutbox) a file that is not an outbox already.
    Other processes may put into its file with an ``Outbox`` while it delivers.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | DatabaseUrl,
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
        if transport is None:
            if client is None:
                transport = HttpTransport.from_environment(
                    timeout=self.config.request_timeout,
                    max_connections=self.config.concurrency,
                )
            else:
                transport = IotEventsTransport(client)
        self._transport = transport
        with ExitStack() as on_failure:
            on_failure.callback(self._close_transport)
            self._stats = StatsRecorder()
            self._delivery = Delivery(
                path, self.config, transport, clock, create=create, stats=self._stats
            )
            on_failure.callback(self._delivery.close, None)
            # A first reading, so that stats() has gauges to report whenever it is closed.
            self._stats.read_gauges(self._delivery.outbox.store, clock())
            on_failure.pop_all()
        self.outbox: Outbox = self._delivery.outbox
        if autostart:
            self._delivery.start()

    @property
    def path(self) -> OutboxTarget:
        return self.outbox.path

    @property
    def store(self) -> Store:
        """The outbox's store, for reads beyond this class's (``lanes_overview``, say)."""
        return self.outbox.store

    @property
    def failure(self) -> str | None:
        """Why the sender stopped delivering for good (its outbox file deleted or replaced)."""
        return self._delivery.failure

    # -- the outbox's side, through the sender -------------------------------------------------

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
        self._check_open()
        receipt = self.outbox.put(
            input_name, payload, message_id=message_id, timestamp_ms=timestamp_ms, timeout=timeout
        )
        self._stats.enqueued(1)
        self._delivery.wake()
        return receipt

    def put_many(
        self,
        items: Iterable[PutItem],
        *,
        timeout: float | None = None,
        connection: object | None = None,
    ) -> list[Receipt]:
        self._check_open()
        receipts = self.outbox.put_many(items, timeout=timeout, connection=connection)
        self._stats.enqueued(len(receipts))
        self._delivery.wake()
        return receipts

    put_many.__doc__ = Outbox.put_many.__doc__

    def pause(self, lane: str, reason: str | None = None) -> bool:
        self._check_open()
        return self.outbox.pause(lane, reason)

    pause.__doc__ = Outbox.pause.__doc__

    def resume(self, lane: str) -> bool:
        """Retry the head of a paused lane now, attempts and age reset; False if not paused."""
        self._check_open()
        resumed = self.outbox.resume(lane)
        self._delivery.wake()
        return resumed

    def redrive(self, message_id: str) -> bool:
        self._check_open()
        redriven = self.outbox.redrive(message_id)
        self._delivery.wake()
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

    def pending_totals(self) -> tuple[int, int]:
        """Pending messages and their payload bytes, read without counting (cheap enough to
        show progress many times a second)."""
        self._check_open()
        return self.outbox.store.pending_totals()

    def stats(self) -> SenderStats:
        """Counters since this sender was opened and gauges of its outbox now (see SenderStats).
        Reads the store: fine every second, not for every message. Once closed, the counters
        with the gauges last read (at the latest when ``close()`` began)."""
        if not self._delivery.closed:
            try:
                return self._stats.snapshot(self.outbox.store, self.clock())
            except StoreError:
                if not self._delivery.closed:
                    raise
        return self._stats.last_snapshot()

    def wait_delivered(self, message_id: str, timeout: float | None = None) -> None:
        self.outbox.wait_delivered(message_id, timeout)

    wait_delivered.__doc__ = Outbox.wait_delivered.__doc__

    def flush(self, timeout: float | None = None) -> bool:
        """True once every message outside paused lanes is delivered; False on timeout.
        DeliveryError when the sender stopped for good first."""
        self._check_open()
        if not self._delivery.started:
            raise RuntimeError(
                "flush() waits for background delivery: call start() first, or deliver_due()"
            )
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._delivery.watching():
            while True:
                if self.outbox.store.deliverable_lanes() == 0:
                    return True
                self._delivery.check()
                if not self._delivery.wait(deadline):
                    return False

    def _check_open(self) -> None:
        if self._delivery.closed:
            raise SenderClosed(f"the sender on {self.path} is closed; open a new one to go on")

    # -- delivering ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start delivering in the background (done by the constructor unless autostart=False)."""
        self._check_open()
        self._delivery.start()

    def deliver_due(self) -> int:
        """Send, in this thread, every request that is due now; returns how many were sent.

        For callers that drive delivery themselves (``autostart=False``), such as tests with an
        injected clock. Loops until nothing is due, as each delivery may make a lane's next head
        due. Raises StoreError while the store cannot record.
        """
        self._check_open()
        if self._delivery.started:
            raise RuntimeError(
                "deliver_due() is for senders made with autostart=False that were not started; "
                "this one delivers in the background already"
            )
        return self._delivery.deliver_due()

    # -- closing -------------------------------------------------------------------------------

    def close(self, timeout: float | None = 30.0) -> None:
        """Stop taking puts, let requests in flight finish (up to ``timeout``), keep the rest.

        A request still in flight after ``timeout`` keeps the outbox open and locked until it
        ends (at most ``request_timeout``), so that its outcome is recorded and no other sender
        can send its lane meanwhile.
        """
        if not self._delivery.closed and self._delivery.failure is None:
            # The last reading of the gauges, which stats() reports once the store is closed.
            with suppress(StoreError):
                self._stats.read_gauges(self.outbox.store, self.clock())
        self._delivery.close(timeout)
        # Nothing is sent after Delivery.close. A request still in flight keeps its connection:
        # the transport closes idle ones now and that one when it comes back.
        self._close_transport()

    def _close_transport(self) -> None:
        close = getattr(self._transport, "close", None)
        if callable(close):
            close()

    def wait_closed(self, timeout: float | None = None) -> bool:
        """After ``close()``: True once the outbox file is released (closed and unlocked), False
        if ``timeout`` passed first. Only a request that outlived close's timeout delays it."""
        return self._delivery.wait_closed(timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
