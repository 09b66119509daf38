"""The chaos harness's judge: what producers were promised against what the emulator processed.

Pure: it reads ledger text and the emulator's ``/_emulator`` documents and returns counts; it
starts nothing and waits for nothing, so its verdicts are tested on hand-made records.

A producer's ledger has one line per event, flushed as it happens, because the producer may be
killed between any two of them::

    try LANE INDEX          about to put message INDEX of LANE
    ok LANE INDEX MSGID     put() returned: the message is committed and must be delivered

A ``try`` without its ``ok`` is in doubt: the put may or may not have committed before the kill,
so that message may be processed or not, but it is never counted as lost. The next producer of
the lane starts after the highest index tried, so indices in a lane stay increasing either way.
"""

from __future__ import annotations

import base64
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Acknowledged:
    """A put that returned: committed to the outbox, so it must be processed."""

    lane: str
    index: int
    message_id: str


@dataclass(frozen=True, slots=True)
class Ledger:
    """One producer's ledger, read back."""

    acknowledged: tuple[Acknowledged, ...]
    highest_tried: Mapping[str, int]
    """Per lane, the highest index a put was attempted for (acknowledged or not)."""


def message_id(lane: str, index: int) -> str:
    return f"{lane}-{index:07d}"


def read_ledger(text: str) -> Ledger:
    """Parse a ledger; a last line cut short by a kill is ignored, it promised nothing."""
    acknowledged = []
    highest_tried: dict[str, int] = {}
    # Only whole lines count: a line without its newline was cut short by a kill.
    for line in text.split("\n")[:-1]:
        parts = line.split()
        if len(parts) == 3 and parts[0] == "try":
            lane, index = parts[1], int(parts[2])
            highest_tried[lane] = max(index, highest_tried.get(lane, -1))
        elif len(parts) == 4 and parts[0] == "ok":
            acknowledged.append(Acknowledged(parts[1], int(parts[2]), parts[3]))
    return Ledger(tuple(acknowledged), highest_tried)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What went wrong, counted; a sound run has 0 lost, 0 reordered, 0 duplicates processed."""

    acknowledged: int
    processed: int
    """Messages of the harness's lanes the emulator processed, duplicates included."""
    processed_in_doubt: int
    """Processed messages whose put never returned (the producer was killed inside put)."""
    lost: int
    """Acknowledged but never processed."""
    gaps: int
    """Lost messages that a later message of the same lane was processed after: holes, not tails."""
    reordered: int
    """Processed messages whose index is not above the previous one processed in their lane."""
    duplicates_processed: int
    """Processing of a messageId that had already been processed."""
    lost_examples: tuple[str, ...]
    reordered_examples: tuple[str, ...]

    @property
    def sound(self) -> bool:
        return self.lost == 0 and self.reordered == 0


def lane_index(processed: Mapping[str, Any]) -> tuple[str, int]:
    """The lane and index a processed message carries in its payload (base64 JSON)."""
    document = json.loads(base64.b64decode(processed["payload"]))
    return str(document["lane"]), int(document["index"])


def judge(
    acknowledged: Iterable[Acknowledged],
    processed: Sequence[Mapping[str, Any]],
    lanes: Iterable[str],
    examples: int = 5,
) -> Verdict:
    """Compare promises with the processing record (``/_emulator/processed``, in order)."""
    promised = list(acknowledged)
    lane_names = set(lanes)
    seen_ids: set[str] = set()
    duplicates = 0
    reordered: list[str] = []
    last_index: dict[str, int] = {}
    processed_by_lane: dict[str, set[int]] = defaultdict(set)
    own = [m for m in processed if m["input_name"] in lane_names]
    for message in own:
        if message["message_id"] in seen_ids:
            duplicates += 1
            continue
        seen_ids.add(message["message_id"])
        lane, index = lane_index(message)
        if index <= last_index.get(lane, -1):
            reordered.append(f"{lane}: {index} after {last_index[lane]}")
        last_index[lane] = max(index, last_index.get(lane, -1))
        processed_by_lane[lane].add(index)
    lost = [a for a in promised if a.message_id not in seen_ids]
    gaps = [a for a in lost if a.index < last_index.get(a.lane, -1)]
    promised_ids = {a.message_id for a in promised}
    return Verdict(
        acknowledged=len(promised),
        processed=len(own),
        processed_in_doubt=len(seen_ids - promised_ids),
        lost=len(lost),
        gaps=len(gaps),
        reordered=len(reordered),
        duplicates_processed=duplicates,
        lost_examples=tuple(a.message_id for a in lost[:examples]),
        reordered_examples=tuple(reordered[:examples]),
    )


def faults_by_kind(
    requests: Sequence[Mapping[str, Any]], processed: Sequence[Mapping[str, Any]]
) -> dict[str, int]:
    """The faults the emulator injected, by kind, from its request and processing records.

    ``shuffled`` counts requests whose messages were processed in another order than sent: the
    emulator's documented reordering within a request, which only lanes apart can survive.
    """
    kinds: Counter[str] = Counter()
    for request in requests:
        if request["error_code"] is not None and request["status"] != 400:
            kinds[f"request {request['status']} {request['error_code']}"] += 1
        for entry in request["error_entries"]:
            kinds[f"entry {entry['error_code']}"] += 1
        if request["dropped"]:
            kinds["connection dropped"] += 1
        if request["latency_ms"] > 0:
            kinds["latency added"] += 1
    sent_order = {
        r["number"]: [m["message_id"] for m in r["messages"]] for r in requests if r["messages"]
    }
    processed_order: dict[int, list[str]] = defaultdict(list)
    for message in processed:
        processed_order[message["request_number"]].append(message["message_id"])
    for number, order in processed_order.items():
        processed_here = set(order)
        sent = [m for m in sent_order.get(number, []) if m in processed_here]
        if len(order) > 1 and order != sent:
            kinds["shuffled"] += 1
    return dict(sorted(kinds.items()))
