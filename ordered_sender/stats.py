"""What a sender did and what its outbox holds: ``SenderStats``, from ``OrderedSender.stats()``.

Counters are kept in memory by a ``StatsRecorder``, which delivery calls once per request (before
the outcome is written, so a ``flush()`` that saw the outbox empty never reads an older count) and
the sender once per put; they count in this process since the sender was opened. Gauges are read
from the store when a snapshot is taken, and the last reading is kept: a closed sender, whose store
is gone, reports its counters with it (``last_snapshot``). Request latency keeps the last
``LATENCY_WINDOW`` requests only, so memory stays bounded however long the sender runs.

The recorder also wakes waiters when a request finished (``wait_for_change``) and, for a waiter
that asked (``track_lanes``), names the request's lanes (``take_news``): the asyncio sender's
receipts wait on it instead of polling. It does no I/O and decides nothing.
"""

from __future__ import annotations

import math
import threading
from collections import Counter, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from ordered_sender.store import (
    Decision,
    Delivered,
    MoveToDeadLetters,
    OutboxCounts,
    Pause,
    Retry,
    Store,
)

LATENCY_WINDOW = 1024
"""Request latency percentiles are taken over at most this many of the latest requests."""


@dataclass(frozen=True, slots=True)
class RequestLatency:
    """Seconds from sending a request to its answer (or its transport error), over the latest
    ``samples`` requests (at most LATENCY_WINDOW). Each percentile is None before any request."""

    samples: int
    """Requests the percentiles are taken over."""
    p50: float | None
    """Median: half of those requests took at most this long."""
    p90: float | None
    p99: float | None
    max: float | None
    """The slowest of those requests."""


@dataclass(frozen=True, slots=True)
class SenderStats:
    """Counters of this sender since it was opened, and gauges of its outbox now.

    After ``close()`` the counters can still be read (and still count the requests that were in
    flight); the gauges are then those last read, at the latest when ``close()`` began
    (``gauges_read_at`` says when), since a closed sender no longer reads its outbox.
    """

    enqueued: int
    """Messages put through this sender (not those put by other Outbox objects or processes)."""
    delivered: int
    """Messages IoT Events acknowledged."""
    retried: Mapping[str, int]
    """Retries scheduled, by error code (``ThrottlingException``, ``ConnectionError``, ...)."""
    dead_lettered: int
    """Messages moved to the dead letters after a permanent failure."""
    lanes_paused: int
    """Times a lane was paused by a permanent failure."""
    requests: int
    """BatchPutMessage requests that came back, answered or failed."""
    request_seconds: float
    """Seconds spent in those requests, added up (with ``requests``: the mean latency)."""
    request_latency: RequestLatency
    """Latency percentiles of the latest requests."""
    pending: int
    """Gauge: messages in the outbox not yet delivered, in every lane; after ``close()``, as
    last read."""
    pending_bytes: int
    """Gauge: payload bytes of the pending messages; after ``close()``, as last read."""
    lanes: int
    """Gauge: lanes with pending messages; after ``close()``, as last read."""
    paused_lanes: int
    """Gauge: lanes paused now, waiting for ``resume``; after ``close()``, as last read."""
    blocked: int
    """Gauge: pending messages in paused lanes; after ``close()``, as last read."""
    dead_letters: int
    """Gauge: messages in the dead letters now (``redrive`` or ``drop`` them); after
    ``close()``, as last read."""
    oldest_pending_age: float | None
    """Gauge: seconds since the oldest pending message was put; None when nothing is pending.
    After ``close()``, its age when last read (it does not grow any more)."""
    gauges_read_at: float
    """When the gauges were read (the sender's clock): now while the sender is open; after
    ``close()``, the last reading."""


@dataclass(frozen=True, slots=True)
class _Gauges:
    """One reading of the outbox, kept for when it can no longer be read."""

    counts: OutboxCounts
    oldest_pending_age: float | None
    read_at: float


class StatsRecorder:
    """Counts what delivery and puts report, from any thread; ``snapshot`` reads the store too."""

    def __init__(self, window: int = LATENCY_WINDOW) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._enqueued = 0
        self._delivered = 0
        self._retried: Counter[str] = Counter()
        self._dead_lettered = 0
        self._lanes_paused = 0
        self._requests = 0
        self._request_seconds = 0.0
        self._latencies: deque[float] = deque(maxlen=window)
        self._changes = 0
        self._touched_lanes: set[str] | None = None
        self._gauges: _Gauges | None = None

    def enqueued(self, messages: int) -> None:
        with self._lock:
            self._enqueued += messages

    def request_decided(self, decisions: Sequence[Decision], latency_ms: float) -> None:
        """One request came back and these are the decisions for its messages."""
        seconds = latency_ms / 1000
        with self._lock:
            self._requests += 1
            self._request_seconds += seconds
            self._latencies.append(seconds)
            for decision in decisions:
                if isinstance(decision, Delivered):
                    self._delivered += 1
                elif isinstance(decision, Retry):
                    self._retried[decision.error_code] += 1
                elif isinstance(decision, MoveToDeadLetters):
                    self._dead_lettered += 1
                elif isinstance(decision, Pause):
                    self._lanes_paused += 1

    def request_finished(self, lanes: Iterable[str]) -> None:
        """A request of these lanes is over, its outcome written (or kept for the store to write
        later)."""
        with self._changed:
            if self._touched_lanes is not None:
                self._touched_lanes.update(lanes)
            self._changes += 1
            self._changed.notify_all()

    def wake_waiters(self) -> None:
        """Wake whoever waits in ``wait_for_change``: they have news of their own."""
        with self._changed:
            self._changes += 1
            self._changed.notify_all()

    def track_lanes(self) -> None:
        """From now on, keep the lanes of finished requests for ``take_news`` (only a waiter
        that takes them asks for it, so nobody else pays for the set)."""
        with self._lock:
            if self._touched_lanes is None:
                self._touched_lanes = set()

    def take_news(self) -> tuple[int, set[str]]:
        """``changes`` (for ``wait_for_change``) and the lanes of the requests that finished
        since the last call (with ``track_lanes``), together."""
        with self._lock:
            touched = self._touched_lanes
            if touched:
                self._touched_lanes = set()
            return self._changes, touched or set()

    def wait_for_change(self, seen: int, timeout: float | None) -> int:
        """Wait until ``changes`` is no longer ``seen``, at most ``timeout`` seconds; returns it."""
        with self._changed:
            self._changed.wait_for(lambda: self._changes != seen, timeout)
            return self._changes

    def read_gauges(self, store: Store, now: float) -> None:
        """Read the gauges from ``store``, kept for ``last_snapshot`` (raises StoreError)."""
        self._read_gauges(store, now)

    def snapshot(self, store: Store, now: float) -> SenderStats:
        """The counters now, and the gauges read from ``store`` (raises StoreError)."""
        return self._with_gauges(self._read_gauges(store, now))

    def last_snapshot(self) -> SenderStats:
        """The counters now, and the gauges last read by ``snapshot`` or ``read_gauges``: what a
        sender reports once its store is closed."""
        with self._lock:
            gauges = self._gauges
        if gauges is None:
            raise RuntimeError("no gauges were read yet: call read_gauges() or snapshot() first")
        return self._with_gauges(gauges)

    def _read_gauges(self, store: Store, now: float) -> _Gauges:
        counts = store.counts()
        oldest = store.oldest_pending_enqueued_at() if counts.pending else None
        gauges = _Gauges(counts, None if oldest is None else max(0.0, now - oldest), now)
        with self._lock:
            # Readings racing from two threads: the later one is kept.
            if self._gauges is None or self._gauges.read_at <= now:
                self._gauges = gauges
        return gauges

    def _with_gauges(self, gauges: _Gauges) -> SenderStats:
        counts = gauges.counts
        with self._lock:
            latencies = sorted(self._latencies)  # at most LATENCY_WINDOW: microseconds
            return SenderStats(
                enqueued=self._enqueued,
                delivered=self._delivered,
                retried=MappingProxyType(dict(self._retried)),
                dead_lettered=self._dead_lettered,
                lanes_paused=self._lanes_paused,
                requests=self._requests,
                request_seconds=self._request_seconds,
                request_latency=RequestLatency(
                    samples=len(latencies),
                    p50=_percentile(latencies, 0.50),
                    p90=_percentile(latencies, 0.90),
                    p99=_percentile(latencies, 0.99),
                    max=latencies[-1] if latencies else None,
                ),
                pending=counts.pending,
                pending_bytes=counts.pending_bytes,
                lanes=counts.lanes,
                paused_lanes=counts.paused_lanes,
                blocked=counts.blocked,
                dead_letters=counts.dead_letters,
                oldest_pending_age=gauges.oldest_pending_age,
                gauges_read_at=gauges.read_at,
            )


def _percentile(ordered: Sequence[float], fraction: float) -> float | None:
    """Nearest rank: the smallest value with at least ``fraction`` of the values at or below it."""
    if not ordered:
        return None
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]
