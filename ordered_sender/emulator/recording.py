"""What the emulator saw and did: processed messages, received requests, counters, and what of a
processed message the detectors could not use.

Tests read these to prove delivery properties (per-input processing order, that no request ever
carried two messages of one lane, that a retry was de-duplicated). The recorder is the only
mutable part; everything it hands out is a frozen value. It is safe to call from any thread.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, fields
from enum import Enum


@dataclass(frozen=True, slots=True)
class ProcessedMessage:
    """A message the emulator processed (accepted, not a duplicate, not refused)."""

    sequence: int
    """1, 2, 3, ... over all inputs, in processing order."""
    message_id: str
    input_name: str
    payload: bytes
    timestamp_ms: int
    """``timestamp.timeInMillis`` of the message, or the processing time when it had none."""
    processed_at: float
    """Emulator clock (seconds since the epoch) when it was processed."""
    request_number: int
    """``RecordedRequest.number`` of the request that carried it."""


@dataclass(frozen=True, slots=True)
class RequestedMessage:
    """One message as a request carried it, before any processing."""

    message_id: str
    input_name: str


@dataclass(frozen=True, slots=True)
class EntryError:
    """One element of ``BatchPutMessageErrorEntries``."""

    message_id: str
    error_code: str
    error_message: str


@dataclass(frozen=True, slots=True)
class UnusableMessage:
    """A message (processed, or sent by an ``iotEvents`` action) that detectors could not use.

    AWS documents no answer for these, so the endpoint never drops them silently: each is
    recorded here and logged as a warning (never with its payload).
    """

    message_id: str
    input_name: str
    detector_model_name: str | None
    """The model that could not use it, or ``None`` when no model could."""
    reason: str
    """``payload_not_json``, ``key_value_invalid``, ``attributes_missing`` (none of the declared
    attributes is there; evaluated with them undefined), ``input_missing`` or
    ``chain_too_long`` (messages of ``iotEvents`` actions)."""
    detail: str
    at: float
    """Emulator clock when it happened."""


class FaultKind(Enum):
    """What ``InjectedFault.kind`` names."""

    REQUEST_ERROR = "request_error"
    ENTRY_ERROR = "entry_error"
    TARGETED_ERROR = "targeted_error"
    LATENCY = "latency"
    CONNECTION_DROPPED = "connection_dropped"


@dataclass(frozen=True, slots=True)
class InjectedFault:
    """One fault the endpoint injected into a request, as the record keeps it."""

    kind: str
    """A ``FaultKind`` value: ``request_error``, ``entry_error`` (random), ``targeted_error``
    (a ``TargetedFault``), ``latency`` or ``connection_dropped``."""
    message_id: str | None
    """The message an entry fault refused; ``None`` for faults of the whole request."""
    detail: str
    """The error code, or the latency in milliseconds."""


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """A BatchPutMessage request and what the emulator answered."""

    number: int
    """1, 2, 3, ... in the order requests were handled."""
    received_at: float
    messages: tuple[RequestedMessage, ...]
    """In request order; for a malformed request, the entries that had both fields as text."""
    status: int
    """HTTP status answered (or that would have been, when the connection was dropped)."""
    error_code: str | None
    """Code of a whole-request error, ``None`` for a 200."""
    error_entries: tuple[EntryError, ...]
    dropped: bool
    """True when the connection was closed without an answer after processing."""
    latency_ms: int
    """Latency injected before answering."""
    injected: tuple[InjectedFault, ...] = ()
    """Every fault injected into this request, in the order decided."""
    duplicates: tuple[str, ...] = ()
    """messageIds skipped as duplicates (seen within five minutes), answered as successes."""


class Event(Enum):
    """What the counters count."""

    REQUEST = "requests"
    MESSAGE_RECEIVED = "messages_received"
    MESSAGE_PROCESSED = "messages_processed"
    DUPLICATE_IGNORED = "duplicates_ignored"
    REQUEST_REFUSED = "requests_refused"
    INPUT_NOT_FOUND = "inputs_not_found"
    REFUSED_BY_GATE = "refused_by_gate"
    REQUEST_ERROR_INJECTED = "request_errors_injected"
    ENTRY_ERROR_INJECTED = "entry_errors_injected"
    TARGETED_ERROR_INJECTED = "targeted_errors_injected"
    LATENCY_INJECTED = "latencies_injected"
    CONNECTION_DROPPED = "connections_dropped"
    UNUSABLE = "unusable_messages"


@dataclass(frozen=True, slots=True)
class EmulatorStats:
    """Counters since the emulator started; each field is named after an ``Event`` value."""

    requests: int = 0
    """BatchPutMessage requests received."""
    messages_received: int = 0
    """Messages in requests that passed validation."""
    messages_processed: int = 0
    duplicates_ignored: int = 0
    """Messages answered as success without processing: their id was seen within 5 minutes."""
    requests_refused: int = 0
    """Requests answered 400 InvalidRequestException by validation."""
    inputs_not_found: int = 0
    """Entries answered ResourceNotFoundException because the input does not exist."""
    refused_by_gate: int = 0
    """Entries refused by a registered gate (e.g. the per-detector rate quota)."""
    request_errors_injected: int = 0
    entry_errors_injected: int = 0
    """Random entry faults (``Faults.entry_error_rate``)."""
    targeted_errors_injected: int = 0
    """Entry faults chosen by a ``TargetedFault``."""
    latencies_injected: int = 0
    """Requests answered with added latency above zero."""
    connections_dropped: int = 0
    unusable_messages: int = 0
    """``UnusableMessage`` records: what detectors could not use of a message."""


class Recorder:
    """Thread-safe store of processed messages, requests and counters."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._processed: list[ProcessedMessage] = []
        self._requests: list[RecordedRequest] = []
        self._unusable: list[UnusableMessage] = []
        self._counts: Counter[Event] = Counter()

    def add_processed(self, message: ProcessedMessage) -> None:
        with self._lock:
            self._processed.append(message)
            self._counts[Event.MESSAGE_PROCESSED] += 1

    def add_request(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)
            self._counts[Event.REQUEST] += 1

    def reset(self) -> None:
        """Forget everything recorded so far; numbering (sequence, request number) goes on."""
        with self._lock:
            self._processed.clear()
            self._requests.clear()
            self._unusable.clear()
            self._counts.clear()

    def add_unusable(self, message: UnusableMessage) -> None:
        with self._lock:
            self._unusable.append(message)
            self._counts[Event.UNUSABLE] += 1

    def unusable(self) -> list[UnusableMessage]:
        with self._lock:
            return list(self._unusable)

    def count(self, event: Event, amount: int = 1) -> None:
        with self._lock:
            self._counts[event] += amount

    def processed(self, input_name: str | None = None) -> list[ProcessedMessage]:
        with self._lock:
            return [m for m in self._processed if input_name in (None, m.input_name)]

    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def stats(self) -> EmulatorStats:
        with self._lock:
            counts = {event.value: self._counts[event] for event in Event}
        return EmulatorStats(**{f.name: counts[f.name] for f in fields(EmulatorStats)})
