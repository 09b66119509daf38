"""Judge one run from the endpoint's record: was every message processed once, in lane order, and
how fast.

Pure: it takes the endpoint's ``/_emulator/processed`` entries and what the contender process
reported, and returns a ``RunResult`` row. The clock of a run ends when the endpoint processed
its last message (the endpoint's own clock, on the same machine as the contender's).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

ORDER_REQUIRED = {"naive", "ordered"}
"""Contenders that promise per-lane order; the unordered loop's reorderings are counted, not
failed."""


@dataclass(frozen=True, slots=True)
class Verification:
    expected: int
    processed: int
    """Distinct expected messages the endpoint processed."""
    duplicates: int
    """Processings of a message id beyond its first."""
    reordered: int
    """Messages processed with a position not above the one processed before them in their
    lane."""
    unexpected: int
    """Processed ids of this run that it never sent."""

    @property
    def missing(self) -> int:
        return self.expected - self.processed


@dataclass(frozen=True, slots=True)
class RunResult:
    contender: str
    """What the table shows: ``naive``, ``unordered``, ``ordered_sender[boto3]``, ..."""
    kind: str
    """``naive``, ``unordered`` or ``ordered``."""
    scenario: str
    lanes: int
    latency_ms: int
    messages: int
    seconds: float
    requests: int
    latency_p50_ms: float
    latency_p99_ms: float
    latency_measure: str
    """What the two latency figures time."""
    cpu_seconds_per_1000: float
    peak_rss_mb: float
    put_per_second: float | None
    """Streaming: the producer's put() rate while the sender delivered."""
    producer_cpu_seconds_per_1000: float | None
    verification: Verification

    @property
    def messages_per_second(self) -> float:
        return self.messages / self.seconds

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.seconds

    @property
    def order_required(self) -> bool:
        return self.kind in ORDER_REQUIRED

    @property
    def correct(self) -> bool:
        check = self.verification
        kept_order = check.reordered == 0 or not self.order_required
        return check.missing == 0 and check.duplicates == 0 and check.unexpected == 0 and kept_order


def parse_message_id(identifier: str) -> tuple[int, int]:
    """(lane, position) from ``<prefix>-<lane>-<position>``."""
    _, lane, position = identifier.rsplit("-", 2)
    return int(lane), int(position)


def verify(processed: Sequence[dict[str, Any]], expected_ids: set[str]) -> Verification:
    """``processed``: this run's entries of the endpoint's record, in any order."""
    seen: set[str] = set()
    duplicates = reordered = unexpected = 0
    last_position: dict[int, int] = {}
    for entry in sorted(processed, key=lambda e: e["sequence"]):
        identifier = entry["message_id"]
        if identifier not in expected_ids:
            unexpected += 1
            continue
        if identifier in seen:
            duplicates += 1
            continue
        seen.add(identifier)
        lane, position = parse_message_id(identifier)
        if position <= last_position.get(lane, -1):
            reordered += 1
        last_position[lane] = max(position, last_position.get(lane, -1))
    return Verification(len(expected_ids), len(seen), duplicates, reordered, unexpected)


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def latencies_ms(report: dict[str, Any], first_processing: dict[str, float]) -> list[float]:
    """Per call for the boto3 loops; per message, from available to processed, for ordered."""
    if report["call_latencies_ms"]:
        return list(report["call_latencies_ms"])
    return [
        (first_processing[identifier] - at) * 1000
        for identifier, at in report["available_at"].items()
        if identifier in first_processing
    ]


def judge(
    *,
    contender: str,
    kind: str,
    scenario: str,
    lanes: int,
    latency_ms: int,
    expected_ids: set[str],
    processed: Sequence[dict[str, Any]],
    requests: int,
    report: dict[str, Any],
) -> RunResult:
    """One row of the results from the endpoint's record of the run and the contender's report."""
    verification = verify(processed, expected_ids)
    first_processing: dict[str, float] = {}
    for entry in processed:
        first_processing.setdefault(entry["message_id"], entry["processed_at"])
    finished = max(first_processing.values(), default=report["started"])
    seconds = max(finished - report["started"], 1e-9)
    values = latencies_ms(report, first_processing)
    count = len(expected_ids)
    put_seconds = report.get("put_seconds")
    producer_cpu = report.get("producer_cpu_seconds")
    return RunResult(
        contender=contender,
        kind=kind,
        scenario=scenario,
        lanes=lanes,
        latency_ms=latency_ms,
        messages=count,
        seconds=seconds,
        requests=requests,
        latency_p50_ms=percentile(values, 0.50),
        latency_p99_ms=percentile(values, 0.99),
        latency_measure=report["latency_measure"],
        cpu_seconds_per_1000=1000 * report["cpu_seconds"] / count,
        peak_rss_mb=report["max_rss_kb"] / 1024,
        put_per_second=None if put_seconds is None else count / put_seconds,
        producer_cpu_seconds_per_1000=None if producer_cpu is None else 1000 * producer_cpu / count,
        verification=verification,
    )
