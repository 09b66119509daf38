"""BatchPutMessage, the data plane: validate, shuffle, de-duplicate, fault, process, record.

One request is handled under one lock, from the first check to the last processor call, so
processing order is a total order that processors and recordings agree on. The order of
decisions for a valid request is:

1. a whole-request fault (429/500/503: nothing is processed);
2. the messages are put in a random order (seeded; AWS does not keep request order);
3. per message: a messageId processed within the last 5 minutes is ignored and reported as a
   success; a targeted fault; ResourceNotFoundException when the input does not exist; a random
   entry fault; the registered gates; otherwise the message is processed: recorded, remembered
   for de-duplication, and handed to every processor;
4. latency and a dropped connection are decided for the answer.

Only processed messages are remembered for de-duplication: a message refused with an entry error
was not processed, so sending it again with the same messageId must process it.
"""

from __future__ import annotations

import base64
import random
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ordered_sender.emulator.faults import FaultInjector, Faults
from ordered_sender.emulator.inputs import InputRegistry
from ordered_sender.emulator.recording import (
    EntryError,
    Event,
    FaultKind,
    InjectedFault,
    ProcessedMessage,
    RecordedRequest,
    Recorder,
    RequestedMessage,
)
from ordered_sender.emulator.shapes import validate_input
from ordered_sender.emulator.wire import ApiError, ApiRequest, ApiResponse, error_response
from ordered_sender.limits import DEDUPLICATION_WINDOW_SECONDS, MAX_MESSAGES_PER_REQUEST

Processor = Callable[[ProcessedMessage], None]
"""Receives every processed message, in processing order, under the data-plane lock.

It must not raise: the message is already recorded as processed, and an exception turns the
answer into a 500 InternalFailureException.
"""

Gate = Callable[[ProcessedMessage], EntryError | None]
"""Asked just before a message would be processed; an ``EntryError`` refuses it.

The candidate carries the sequence number it would get. A refused message is not processed,
not remembered for de-duplication and reported in BatchPutMessageErrorEntries.
"""


class MessageIdWindow:
    """messageIds processed within the de-duplication window, oldest first.

    The window counts from when a messageId was processed; ignored duplicates do not extend it,
    so a sender retrying for longer than the window gets its message processed again.
    """

    def __init__(self, seconds: float = DEDUPLICATION_WINDOW_SECONDS) -> None:
        self._seconds = seconds
        self._processed_at: OrderedDict[str, float] = OrderedDict()

    def contains(self, message_id: str, now: float) -> bool:
        self._forget_before(now - self._seconds)
        return message_id in self._processed_at

    def remember(self, message_id: str, now: float) -> None:
        self._processed_at[message_id] = now
        self._processed_at.move_to_end(message_id)

    def export(self) -> list[tuple[str, float]]:
        """(messageId, processed at) pairs, oldest first."""
        return list(self._processed_at.items())

    def restore(self, pairs: list[tuple[str, float]]) -> None:
        self._processed_at = OrderedDict(pairs)

    def _forget_before(self, cutoff: float) -> None:
        while self._processed_at:
            oldest_id, processed_at = next(iter(self._processed_at.items()))
            if processed_at > cutoff:
                return
            del self._processed_at[oldest_id]


@dataclass(frozen=True, slots=True)
class _Message:
    """A message of a validated request, decoded."""

    message_id: str
    input_name: str
    payload: bytes
    timestamp_ms: int | None


@dataclass(slots=True)
class _Notes:
    """What the record keeps of one request beyond its answer: faults injected, duplicates."""

    injected: list[InjectedFault]
    duplicates: list[str]

    def fault(self, kind: FaultKind, message_id: str | None, detail: str) -> None:
        self.injected.append(InjectedFault(kind.value, message_id, detail))


class DataPlane:
    """The BatchPutMessage handler and the state it needs across requests."""

    def __init__(
        self,
        *,
        inputs: InputRegistry,
        faults: FaultInjector,
        recorder: Recorder,
        clock: Callable[[], float],
        seed: int,
        shuffle: bool,
        max_payload_bytes: int,
    ) -> None:
        self._inputs = inputs
        self._faults = faults
        self._recorder = recorder
        self._clock = clock
        self._order_random = random.Random(seed)
        self._shuffle = shuffle
        self._max_payload_bytes = max_payload_bytes
        self._window = MessageIdWindow()
        self._processors: list[Processor] = []
        self._gates: list[Gate] = []
        self._lock = threading.Lock()
        self._request_count = 0
        self._sequence = 0

    def set_faults(self, faults: Faults) -> None:
        with self._lock:
            self._faults.set_faults(faults)

    def export_window(self) -> list[tuple[str, float]]:
        """The de-duplication window (messageIds processed within five minutes), for ``--state``.

        Taken under the data-plane lock, so it never shows half of a request."""
        with self._lock:
            return self._window.export()

    def restore_window(self, pairs: list[tuple[str, float]]) -> None:
        with self._lock:
            self._window.restore([(message_id, at) for message_id, at in pairs])

    def add_processor(self, processor: Processor) -> None:
        with self._lock:
            self._processors.append(processor)

    def add_gate(self, gate: Gate) -> None:
        with self._lock:
            self._gates.append(gate)

    def batch_put_message(self, request: ApiRequest) -> ApiResponse:
        with self._lock:
            self._request_count += 1
            number = self._request_count
            now = self._clock()
            notes = _Notes([], [])
            requested: tuple[RequestedMessage, ...] = ()
            try:
                document = request.json_body()
                requested = _requested(document)
                messages = self._validated(document)
            except ApiError as error:
                self._recorder.count(Event.REQUEST_REFUSED)
                return self._answer_error(error, number, now, requested, notes)
            self._recorder.count(Event.MESSAGE_RECEIVED, len(messages))
            fault = self._faults.request_error()
            if fault is not None:
                self._recorder.count(Event.REQUEST_ERROR_INJECTED)
                notes.fault(FaultKind.REQUEST_ERROR, None, fault.code)
                return self._answer_error(fault, number, now, requested, notes)
            order = list(messages)
            if self._shuffle:
                self._order_random.shuffle(order)
            entries = [
                entry
                for message in order
                if (entry := self._process(message, number, now, notes)) is not None
            ]
            return self._answer(number, now, requested, entries, notes)

    def _validated(self, document: dict[str, Any]) -> list[_Message]:
        validate_input("iotevents-data", "BatchPutMessage", document)
        raw = document["messages"]
        if len(raw) > MAX_MESSAGES_PER_REQUEST:
            raise ApiError.invalid_request(
                f"Value 'length {len(raw)}' at 'messages' failed to satisfy constraint: "
                f"at most {MAX_MESSAGES_PER_REQUEST} messages per request"
            )
        first_position: dict[str, int] = {}
        for position, entry in enumerate(raw, start=1):
            message_id = entry["messageId"]
            if message_id in first_position:
                raise ApiError.invalid_request(
                    f"Value '{message_id}' at 'messages.{position}.member.messageId' failed to "
                    f"satisfy constraint: messageId already used by message "
                    f"{first_position[message_id]}; each messageId must be unique in a request"
                )
            first_position[message_id] = position
        messages = [
            _Message(
                entry["messageId"],
                entry["inputName"],
                base64.b64decode(entry["payload"]),
                (entry.get("timestamp") or {}).get("timeInMillis"),
            )
            for entry in raw
        ]
        total = sum(len(message.payload) for message in messages)
        if total > self._max_payload_bytes:
            raise ApiError.invalid_request(
                f"Value '{total} bytes' at 'messages.payload' failed to satisfy constraint: "
                f"the payloads of one request may total at most {self._max_payload_bytes} bytes"
            )
        return messages

    def _process(
        self, message: _Message, number: int, now: float, notes: _Notes
    ) -> EntryError | None:
        """Process one message; the entry error to report, or ``None`` on success."""
        if self._window.contains(message.message_id, now):
            self._recorder.count(Event.DUPLICATE_IGNORED)
            notes.duplicates.append(message.message_id)
            return None
        fault = self._faults.entry_error(message.message_id, message.input_name)
        if fault is not None and fault.targeted:
            self._recorder.count(Event.TARGETED_ERROR_INJECTED)
            notes.fault(FaultKind.TARGETED_ERROR, message.message_id, fault.error_code)
            return EntryError(message.message_id, fault.error_code, fault.error_message)
        if not self._inputs.exists(message.input_name):
            self._recorder.count(Event.INPUT_NOT_FOUND)
            return EntryError(
                message.message_id,
                "ResourceNotFoundException",
                f"Input {message.input_name!r} does not exist; create it with CreateInput",
            )
        if fault is not None:
            self._recorder.count(Event.ENTRY_ERROR_INJECTED)
            notes.fault(FaultKind.ENTRY_ERROR, message.message_id, fault.error_code)
            return EntryError(message.message_id, fault.error_code, fault.error_message)
        candidate = ProcessedMessage(
            sequence=self._sequence + 1,
            message_id=message.message_id,
            input_name=message.input_name,
            payload=message.payload,
            timestamp_ms=(
                message.timestamp_ms if message.timestamp_ms is not None else int(now * 1000)
            ),
            processed_at=now,
            request_number=number,
        )
        for gate in self._gates:
            refusal = gate(candidate)
            if refusal is not None:
                self._recorder.count(Event.REFUSED_BY_GATE)
                return refusal
        self._sequence = candidate.sequence
        self._window.remember(message.message_id, now)
        self._recorder.add_processed(candidate)
        for processor in self._processors:
            processor(candidate)
        return None

    def _answer(
        self,
        number: int,
        now: float,
        requested: tuple[RequestedMessage, ...],
        entries: list[EntryError],
        notes: _Notes,
    ) -> ApiResponse:
        latency = self._latency(notes)
        dropped = self._faults.drop_connection()
        if dropped:
            self._recorder.count(Event.CONNECTION_DROPPED)
            notes.fault(FaultKind.CONNECTION_DROPPED, None, "")
        self._record(number, now, requested, 200, None, tuple(entries), dropped, latency, notes)
        body = {
            "BatchPutMessageErrorEntries": [
                {
                    "messageId": entry.message_id,
                    "errorCode": entry.error_code,
                    "errorMessage": entry.error_message,
                }
                for entry in entries
            ]
        }
        return ApiResponse(200, body, delay_seconds=latency, drop_connection=dropped)

    def _answer_error(
        self,
        error: ApiError,
        number: int,
        now: float,
        requested: tuple[RequestedMessage, ...],
        notes: _Notes,
    ) -> ApiResponse:
        latency = self._latency(notes)
        self._record(number, now, requested, error.status, error.code, (), False, latency, notes)
        response = error_response(error)
        return ApiResponse(response.status, response.body, response.headers, delay_seconds=latency)

    def _latency(self, notes: _Notes) -> float:
        seconds = self._faults.latency_seconds()
        if seconds > 0:
            self._recorder.count(Event.LATENCY_INJECTED)
            notes.fault(FaultKind.LATENCY, None, f"{round(seconds * 1000)} ms")
        return seconds

    def _record(
        self,
        number: int,
        now: float,
        requested: tuple[RequestedMessage, ...],
        status: int,
        error_code: str | None,
        entries: tuple[EntryError, ...],
        dropped: bool,
        latency_seconds: float,
        notes: _Notes,
    ) -> None:
        self._recorder.add_request(
            RecordedRequest(
                number=number,
                received_at=now,
                messages=requested,
                status=status,
                error_code=error_code,
                error_entries=entries,
                dropped=dropped,
                latency_ms=round(latency_seconds * 1000),
                injected=tuple(notes.injected),
                duplicates=tuple(notes.duplicates),
            )
        )


def _requested(document: dict[str, Any]) -> tuple[RequestedMessage, ...]:
    """The ids and inputs a request carried, read leniently so malformed requests are recorded."""
    raw = document.get("messages")
    if not isinstance(raw, list):
        return ()
    return tuple(
        RequestedMessage(entry["messageId"], entry["inputName"])
        for entry in raw
        if isinstance(entry, dict)
        and isinstance(entry.get("messageId"), str)
        and isinstance(entry.get("inputName"), str)
    )
