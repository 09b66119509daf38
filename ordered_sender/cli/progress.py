"""Watching an outbox drain: the live display on a terminal, plain lines elsewhere, the summary.

Shared by ``send --wait``, ``run`` and ``demo``. The wait itself is ``OrderedSender.flush``, which
wakes on every delivery; the short flush timeout only bounds how stale the display and the stop
check can be. Counts in a summary are read after the sender closed, so they include the outcomes
of the requests that were in flight and agree with what ``status`` shows afterwards.
"""

from __future__ import annotations

import enum
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Column

from ordered_sender.cli.options import PROGRESS_LINE_SECONDS, opened_store
from ordered_sender.sender import OrderedSender
from ordered_sender.stats import SenderStats
from ordered_sender.store import Store

REFRESH_SECONDS = 0.1
"""Longest the display lags behind the outbox, and the longest a stop request waits to be seen."""
STATE_SECONDS = 1.0
"""How often the display reads the sender's stats and why messages wait (the last error of the
oldest head): reading them queries the store."""


class StopRequest:
    """Set by SIGTERM or SIGINT; remembers which, for the exit status ``128 + signal number``
    that shells give a command a signal ended (130 for Ctrl-C, 143 for SIGTERM)."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.signal_number: int | None = None

    def request(self, signal_number: int) -> None:
        self.signal_number = signal_number
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float) -> bool:
        return self._event.wait(timeout)

    @property
    def exit_status(self) -> int:
        return 128 + (self.signal_number or 0)


@contextmanager
def interrupt_as_event() -> Iterator[StopRequest]:
    """A stop request set by SIGTERM or SIGINT while the block runs, instead of an exception
    midway."""
    stop = StopRequest()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.request(signum)

    previous = {
        number: signal.signal(number, request_stop) for number in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        yield stop
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def counted(count: int, noun: str) -> str:
    """``1 message``, ``2 messages``: the command's own output reads as English."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def waiting_reason(store: Store) -> str | None:
    """Why the oldest lane is waiting: its head's last error, or None when it has none."""
    lanes = store.lanes_overview(1)
    if not lanes or lanes[0].last_error_code is None:
        return None
    lane = lanes[0]
    text = f"{lane.last_error_code}: {lane.last_error_text}" if lane.last_error_text else ""
    return text or lane.last_error_code


class Ending(enum.Enum):
    """Why waiting ended."""

    FLUSHED = "flushed"
    TIMED_OUT = "timed out"
    STALLED = "stalled"
    """Nothing was delivered for the stall timeout while messages waited."""
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """Where the outbox stood when waiting ended, counted after the sender closed."""

    ending: Ending
    pending: int
    """Messages still in the outbox (paused lanes included)."""
    paused_lanes: int
    elapsed_seconds: float
    last_error: str | None = None
    """The last error of the oldest waiting head, if any: the likely reason for the rest."""

    @property
    def complete(self) -> bool:
        return self.pending == 0

    def summary(self, kept_in: Path | None) -> str:
        """One line; ``kept_in`` is the outbox the rest stays in, None for a temporary one."""
        if self.complete:
            return f"everything delivered in {self.elapsed_seconds:.1f} s"
        reason = {
            Ending.FLUSHED: counted(self.paused_lanes, "paused lane"),
            Ending.TIMED_OUT: "the timeout passed",
            Ending.STALLED: "nothing was delivered within --stall-timeout",
            Ending.STOPPED: "stopped by a signal",
        }[self.ending]
        if self.last_error is not None and self.ending is not Ending.FLUSHED:
            reason = f"{reason}; last error: {self.last_error}"
        kept = (
            f"they stay in {kept_in} for `ordered-sender run --outbox {kept_in}`"
            if kept_in is not None
            else "the outbox was temporary and is gone"
        )
        return f"{counted(self.pending, 'message')} not delivered ({reason}); {kept}"


class ProgressDisplay:
    """Delivery as it goes: a live line on a terminal (bar and count when ``total`` is known);
    elsewhere a plain line every ``line_seconds`` while something changed, so a log file or a
    pipe shows progress too."""

    def __init__(self, console: Console, *, total: int | None, line_seconds: float) -> None:
        self._console = console
        self._total = total
        self._line_seconds = line_seconds
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._last_line_at = time.monotonic()
        self._last_line: str | None = None

    def __enter__(self) -> ProgressDisplay:
        if self._console.is_terminal:
            columns = (
                [
                    TextColumn("delivered", table_column=Column(no_wrap=True)),
                    BarColumn(bar_width=24),
                    MofNCompleteColumn(table_column=Column(no_wrap=True)),
                ]
                if self._total is not None
                else [SpinnerColumn()]
            )
            # The state takes what is left of the line and is cut, never the bar or the counts.
            state = Column(ratio=1, no_wrap=True, overflow="ellipsis")
            self._progress = Progress(
                *columns,
                TimeElapsedColumn(table_column=Column(no_wrap=True)),
                TextColumn("{task.description}", markup=False, table_column=state),
                console=self._console,
                expand=True,
            )
            self._progress.start()
            self._task = self._progress.add_task("", total=self._total)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

    def show(self, text: str, *, completed: int | None = None) -> None:
        """The current state in words, and for a bar the messages done so far."""
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, description=text, completed=completed)
            return
        now = time.monotonic()
        due = now - self._last_line_at >= self._line_seconds
        if due and text != self._last_line:
            self._console.print(text, highlight=False, soft_wrap=True)
            self._last_line = text
            self._last_line_at = now


def outcome_after_close(
    sender: OrderedSender, outbox: Path, ending: Ending, elapsed: float
) -> DeliveryOutcome:
    """Close ``sender`` (requests in flight finish and are recorded), then count from its
    ``outbox`` file, as ``status`` would."""
    sender.close()
    sender.wait_closed()
    with opened_store(outbox, read_only=True) as store:
        counts = store.counts()
        reason = waiting_reason(store)
    return DeliveryOutcome(
        ending=ending,
        pending=counts.pending,
        paused_lanes=counts.paused_lanes,
        elapsed_seconds=elapsed,
        last_error=reason,
    )


def state_line(stats: SenderStats, elapsed: float, reason: str | None) -> str:
    """``120 delivered (40/s), 30 pending in 3 lanes``, and why the rest waits when it does."""
    rate = stats.delivered / elapsed if elapsed > 0 else 0.0
    line = (
        f"{stats.delivered} delivered ({rate:.0f}/s), {stats.pending} pending in "
        f"{counted(stats.lanes, 'lane')}"
    )
    if stats.paused_lanes:
        line = f"{line}, {counted(stats.paused_lanes, 'paused lane')}"
    return line if reason is None else f"{line}; waiting: {reason}"


def deliver_with_progress(
    sender: OrderedSender,
    console: Console,
    *,
    total: int,
    timeout: float | None,
    stop: StopRequest,
    stall_timeout: float | None = None,
    line_seconds: float = PROGRESS_LINE_SECONDS,
) -> tuple[Ending, float]:
    """Show delivery of ``total`` messages until the outbox is flushed, ``timeout`` passes,
    nothing is delivered for ``stall_timeout`` seconds, or ``stop`` is set; paused lanes count as
    flushed (they wait for ``resume``). Returns why it ended and the seconds it took."""
    started = time.monotonic()
    deadline = None if timeout is None else started + timeout
    last_progress_at = started
    fewest_pending: int | None = None
    state_read_at = started - STATE_SECONDS
    with ProgressDisplay(console, total=total, line_seconds=line_seconds) as display:
        while True:
            flushed = sender.flush(timeout=REFRESH_SECONDS)
            now = time.monotonic()
            if now - state_read_at >= STATE_SECONDS:
                stats = sender.stats()
                reason = waiting_reason(sender.store) if stats.pending else None
                state = state_line(stats, now - started, reason)
                state_read_at = now
            pending, _ = sender.pending_totals()  # O(1): kept by the store, not counted
            display.show(state, completed=max(total - pending, 0))
            if fewest_pending is None or pending < fewest_pending:
                fewest_pending, last_progress_at = pending, now
            if flushed:
                return Ending.FLUSHED, now - started
            if stop.is_set():
                return Ending.STOPPED, now - started
            if deadline is not None and now >= deadline:
                return Ending.TIMED_OUT, now - started
            if stall_timeout is not None and now - last_progress_at >= stall_timeout:
                return Ending.STALLED, now - started
