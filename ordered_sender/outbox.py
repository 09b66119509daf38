"""Outbox: the put side of an outbox file, without delivery.

Putting validates each message, fixes its lane and commits it; nothing here sends. Any number of
Outbox objects, in any number of processes, may put into one file while a single OrderedSender
(``ordered-sender run``, say) delivers it: SQLite serialises their commits, and the order of
commits is the order of each lane. OrderedSender puts through an Outbox of its own.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self

from ordered_sender.config import SenderConfig
from ordered_sender.errors import LanePaused
from ordered_sender.events import log
from ordered_sender.message import build_message
from ordered_sender.store import MessageState, NewEntry, OutboxCounts, PausedLane, Store
from ordered_sender.store.sqlite import SqliteStore

Clock = Callable[[], float]
"""Seconds since the Unix epoch; ``wall_clock`` unless a test injects its own."""


def wall_clock() -> float:
    """``time.time()``, looked up at each call so that tools that patch it (freezegun) apply."""
    return time.time()


PutItem = (
    tuple[str, object] | tuple[str, object, str | None] | tuple[str, object, str | None, int | None]
)
"""``(input_name, payload)``, optionally followed by ``message_id`` and ``timestamp_ms``."""


class DeliveryWaiter(Protocol):
    """Whoever can tell when a message was delivered: an OrderedSender, or an Outbox by polling."""

    store: Store

    def wait_delivered(self, message_id: str, timeout: float | None = None) -> None: ...


@dataclass(frozen=True, slots=True)
class Receipt:
    """Proof that a message is committed to the outbox, and a handle to wait for its delivery."""

    message_id: str
    lane: str
    seq: int
    _waiter: DeliveryWaiter = field(repr=False, compare=False)

    def result(self, timeout: float | None = None) -> None:
        """Block until the message is delivered.

        Raises ``LanePaused`` when its lane is paused (it will not move until ``resume``),
        ``DeliveryError`` when the sender was closed first (it stays in the outbox) and
        ``TimeoutError`` when ``timeout`` seconds pass first.
        """
        self._waiter.wait_delivered(self.message_id, timeout)

    def delivered(self) -> bool:
        status = self._waiter.store.status(self.message_id)
        # A missing id was delivered and forgotten after the retention period.
        return status is None or status.state is MessageState.DELIVERED


class Outbox:
    """Puts messages into an outbox file for a sender, in this or another process, to deliver."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        config: SenderConfig | None = None,
        *,
        clock: Clock = wall_clock,
    ) -> None:
        self.config = config or SenderConfig()
        self.path = Path(path)
        self.clock = clock
        self.store: Store = SqliteStore(self.path, synchronous=self.config.synchronous)

    def put(
        self,
        input_name: str,
        payload: object,
        *,
        message_id: str | None = None,
        timestamp_ms: int | None = None,
    ) -> Receipt:
        """Commit one message and return once it is on disk."""
        return self.put_many([(input_name, payload, message_id, timestamp_ms)])[0]

    def put_many(self, items: Iterable[PutItem]) -> list[Receipt]:
        """Commit several messages in one transaction: all of them, in order, or none.

        Each item is ``(input_name, payload)``, optionally followed by ``message_id`` and
        ``timestamp_ms`` (None for either means: generate one, or use the time of the put).
        """
        now = self.clock()
        default_timestamp = int(now * 1000) if self.config.send_timestamp else None
        entries = []
        for item in items:
            input_name, payload, message_id, timestamp_ms = _unpack(item)
            message = build_message(
                input_name,
                payload,
                message_id=message_id,
                timestamp_ms=default_timestamp if timestamp_ms is None else timestamp_ms,
                max_payload_bytes=self.config.max_payload_bytes_per_request,
            )
            entries.append(NewEntry(message, self.config.lane(message)))
        stored = self.store.add(entries, now)
        for record in stored:
            log.debug(
                "message.enqueued",
                lane=record.lane,
                input_name=record.message.input_name,
                message_id=record.message.message_id,
                seq=record.seq,
                payload_bytes=len(record.message.payload),
            )
        return [Receipt(r.message.message_id, r.lane, r.seq, self) for r in stored]

    def paused_lanes(self) -> list[PausedLane]:
        return self.store.paused_lanes()

    def resume(self, lane: str) -> bool:
        """Retry the head of a paused lane now; False if the lane was not paused."""
        resumed = self.store.resume(lane, self.clock())
        if resumed:
            log.info("lane.resumed", lane=lane)
        return resumed

    def counts(self) -> OutboxCounts:
        return self.store.counts()

    def pause_reason(self, lane: str) -> str:
        for paused in self.store.paused_lanes():
            if paused.lane == lane:
                return (
                    f"lane paused at message {paused.message_id}: "
                    f"{paused.error_code}: {paused.error_text}"
                )
        return "lane paused"

    def wait_delivered(self, message_id: str, timeout: float | None = None) -> None:
        """Block until the message is delivered; see ``Receipt.result`` for what it raises."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            status = self.store.status(message_id)
            # A missing id was delivered and forgotten after the retention period.
            if status is None or status.state is MessageState.DELIVERED:
                return
            if status.lane_paused:
                raise LanePaused(message_id, status.lane, self.pause_reason(status.lane))
            self._check_deliverable(message_id, status.lane)
            if not self._wait_for_change(deadline):
                raise TimeoutError(f"message {message_id} not delivered within {timeout} s")

    def _check_deliverable(self, message_id: str, lane: str) -> None:
        """Raise when the message cannot arrive without someone acting; an Outbox cannot tell."""

    def _wait_for_change(self, deadline: float | None) -> bool:
        """Wait before looking again; False once the deadline passed. A sender in another
        process delivers, so nothing here is told of a change: look every poll interval."""
        seconds = self._poll_seconds(deadline)
        if seconds is None:
            return False
        time.sleep(seconds)
        return True

    def _poll_seconds(self, deadline: float | None) -> float | None:
        """A poll interval, or what is left of it before ``deadline``; None once that passed."""
        if deadline is None:
            return self.config.idle_poll_seconds
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        return min(remaining, self.config.idle_poll_seconds)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _unpack(item: Sequence[object]) -> tuple[object, object, object, object]:
    if not 2 <= len(item) <= 4:
        raise TypeError(
            f"a put_many item is (input_name, payload[, message_id[, timestamp_ms]]), "
            f"not {len(item)} values"
        )
    padded = (*item, None, None)
    return padded[0], padded[1], padded[2], padded[3]
