"""The demo's verdict: which messages it plans, what the endpoint recorded, whether every lane
arrived complete, in order and without duplicates, and the exit status its parts add up to.

``plan_demo`` and ``check_lanes`` are pure. The record comes from the emulator in this process or
from another one's ``/_emulator`` HTTP paths; nothing here sends messages.
"""

from __future__ import annotations

import json
import urllib.request
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, fields
from enum import Enum
from typing import Any

from ordered_sender.emulator import EmulatorStats
from ordered_sender.emulator.emulator import Emulator

DEMO_INPUTS = ("FlowInput", "TemperatureInput", "VibrationInput")
"""Inputs of the first part; none is the motor comparison's PressureInput, whose detector
model reads attributes these inputs do not declare."""
LANE_KEY = "device"
"""Payload attribute that splits each demo input into lanes (one per device)."""

EXIT_UNVERIFIED = 3
"""Exit status when everything was acknowledged but the endpoint keeps no record to check."""


class Verdict(Enum):
    """How one part of the demo came out."""

    RIGHT = "right"
    FAILED = "failed"
    UNVERIFIED = "unverified"
    """Everything was acknowledged, but the endpoint keeps no record to check the order with."""
    SKIPPED = "skipped"


def exit_status(*verdicts: Verdict) -> int:
    """1 when a part failed, else ``EXIT_UNVERIFIED`` when a part could not be checked, else 0.

    A skipped part counts as neither: the naive run being wrong is the point, not a failure.
    """
    if Verdict.FAILED in verdicts:
        return 1
    return EXIT_UNVERIFIED if Verdict.UNVERIFIED in verdicts else 0


@dataclass(frozen=True, slots=True)
class DemoLane:
    """One lane of the demo: an input and a device id (the lane key)."""

    input_name: str
    device: str

    @property
    def name(self) -> str:
        return f"{self.input_name}/{self.device}"


@dataclass(frozen=True, slots=True)
class PlannedMessage:
    message_id: str
    lane: DemoLane
    position: int
    """0, 1, 2, ... within its lane: the order it must be processed in."""


@dataclass(frozen=True, slots=True)
class EndpointRecord:
    """What the endpoint saw, from its own record."""

    processed_ids: tuple[str, ...]
    """Message ids in processing order."""
    sent_ids: tuple[str, ...]
    """The id of every message every request carried, retries included."""
    stats: EmulatorStats


@dataclass(frozen=True, slots=True)
class LaneReport:
    lane: DemoLane
    put: int
    processed: int
    """Distinct messages of this lane the endpoint processed."""
    in_order: bool
    """Each message processed after every message put before it in the lane."""
    duplicates: int
    """Times a message of this lane was processed again."""

    @property
    def complete(self) -> bool:
        return self.processed == self.put and self.in_order and self.duplicates == 0


def plan_demo(messages: int, lane_count: int, run_id: str) -> list[PlannedMessage]:
    """``messages`` messages spread round-robin over ``lane_count`` lanes, in put order."""
    lanes = [
        DemoLane(DEMO_INPUTS[index % len(DEMO_INPUTS)], f"device-{index + 1:03d}")
        for index in range(lane_count)
    ]
    planned = []
    for number in range(messages):
        lane = lanes[number % lane_count]
        position = number // lane_count
        message_id = f"demo-{run_id}-{number % lane_count:03d}-{position:06d}"
        planned.append(PlannedMessage(message_id, lane, position))
    return planned


def check_lanes(planned: Sequence[PlannedMessage], record: EndpointRecord) -> list[LaneReport]:
    """Per lane: was every message processed, exactly once, in put order?"""
    by_id = {message.message_id: message for message in planned}
    positions: dict[DemoLane, list[int]] = {}
    for message_id in record.processed_ids:
        message = by_id.get(message_id)
        # Another run's messages on a shared endpoint are not this demo's business.
        if message is not None:
            positions.setdefault(message.lane, []).append(message.position)
    put = Counter(message.lane for message in planned)
    reports = []
    for lane, count in put.items():
        seen = positions.get(lane, [])
        distinct = list(dict.fromkeys(seen))
        reports.append(
            LaneReport(
                lane=lane,
                put=count,
                processed=len(distinct),
                in_order=distinct == sorted(distinct),
                duplicates=len(seen) - len(distinct),
            )
        )
    return reports


def embedded_record(emulator: Emulator) -> EndpointRecord:
    return EndpointRecord(
        processed_ids=tuple(message.message_id for message in emulator.processed()),
        sent_ids=tuple(
            message.message_id for request in emulator.requests() for message in request.messages
        ),
        stats=emulator.stats(),
    )


def remote_record(endpoint_url: str) -> EndpointRecord | None:
    """The ``/_emulator`` record of an ordered-sender emulator; None for any other endpoint."""
    try:
        processed = _get_json(f"{endpoint_url}/_emulator/processed")["processed"]
        requests = _get_json(f"{endpoint_url}/_emulator/requests")["requests"]
        stats = _get_json(f"{endpoint_url}/_emulator/stats")
        return EndpointRecord(
            processed_ids=tuple(message["message_id"] for message in processed),
            sent_ids=tuple(
                message["message_id"] for request in requests for message in request["messages"]
            ),
            stats=EmulatorStats(**{f.name: int(stats[f.name]) for f in fields(EmulatorStats)}),
        )
    except (OSError, ValueError, KeyError, TypeError):
        # Not reachable, not JSON or not our shape: the endpoint is not an ordered-sender emulator.
        return None


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


def stats_since(before: EmulatorStats, after: EmulatorStats) -> EmulatorStats:
    """Counters of this run alone, on an endpoint that was counting already."""
    return EmulatorStats(
        **{f.name: getattr(after, f.name) - getattr(before, f.name) for f in fields(EmulatorStats)}
    )
