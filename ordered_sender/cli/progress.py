"""Waiting for an outbox to drain, with a rich progress bar of delivered messages.

Shared by ``send --wait`` and ``demo``. The wait itself is ``OrderedSender.flush``, which wakes on
every delivery; the short flush timeout only bounds how stale the bar and the stop check can be.
"""

from __future__ import annotations

import enum
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from ordered_sender.sender import OrderedSender


@contextmanager
def interrupt_as_event() -> Iterator[threading.Event]:
    """An event set by SIGTERM or SIGINT while the block runs, instead of an exception midway."""
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {
        number: signal.signal(number, request_stop) for number in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        yield stop
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


REFRESH_SECONDS = 0.1
"""Longest the bar lags behind the outbox, and the longest a stop request waits to be seen."""


class Ending(enum.Enum):
    """Why waiting ended."""

    FLUSHED = "flushed"
    TIMED_OUT = "timed out"
    STOPPED = "stopped"


def counted(count: int, noun: str) -> str:
    """``1 message``, ``2 messages``: the command's own output reads as English."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """Where the outbox stood when waiting ended."""

    ending: Ending
    pending: int
    """Messages still in the outbox (paused lanes included)."""
    paused_lanes: int
    elapsed_seconds: float

    @property
    def complete(self) -> bool:
        return self.pending == 0

    @property
    def summary(self) -> str:
        if self.complete:
            return f"all messages delivered in {self.elapsed_seconds:.1f} s"
        reason = {
            Ending.FLUSHED: f"paused lanes: {self.paused_lanes}",
            Ending.TIMED_OUT: "the timeout passed",
            Ending.STOPPED: "stopped by a signal",
        }[self.ending]
        return (
            f"{counted(self.pending, 'message')} not delivered ({reason}); "
            "they stay in the outbox for `ordered-sender run`"
        )


def deliver_with_progress(
    sender: OrderedSender,
    console: Console,
    *,
    total: int,
    timeout: float | None,
    stop: threading.Event,
) -> DeliveryOutcome:
    """Show delivery of ``total`` messages until the outbox is flushed, ``timeout`` passes or
    ``stop`` is set; paused lanes count as flushed (they wait for ``resume``)."""
    started = time.monotonic()
    deadline = None if timeout is None else started + timeout
    columns = (
        TextColumn("delivered"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("delivering", total=total)
        while True:
            flushed = sender.flush(timeout=REFRESH_SECONDS)
            pending, _ = sender.pending_totals()  # O(1): kept by the store, not counted
            progress.update(task, completed=max(total - pending, 0))
            if flushed:
                ending = Ending.FLUSHED
                break
            if stop.is_set():
                ending = Ending.STOPPED
                break
            if deadline is not None and time.monotonic() >= deadline:
                ending = Ending.TIMED_OUT
                break
    counts = sender.counts()
    return DeliveryOutcome(
        ending=ending,
        pending=counts.pending,
        paused_lanes=counts.paused_lanes,
        elapsed_seconds=time.monotonic() - started,
    )
