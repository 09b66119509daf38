"""One message at the detectors' door: refused or not, which detectors it reaches, what they see.

Messages the detectors cannot use, and what happens to them:

- a keyed model's key is not in the payload (or the payload is not JSON): refused before
  processing with an ``InvalidRequestException`` entry. AWS IoT Core developer guide, "AWS IoT
  Events" rule action, Important: a payload "without the Input attribute Key, or if the key
  isn't in the same JSON path specified in the key, ... will cause the IoT rule to fail with
  the error Failed to send message to Iot Events";
- undocumented, so processed and recorded (``UnusableMessage`` and a warning, never silent): a
  payload that is not JSON for a model without a key; a key value that DescribeDetector's
  ``keyValue`` pattern would refuse (no detector is created for it); a payload holding none of
  the attributes its input declares (evaluated with all of them undefined; a payload missing
  only some is ordinary, ``isUndefined`` is there for it).

Detectors see only the attributes the input declares (``declared_view``). The optional quota of
ten messages per second per detector counts arrivals here. Not thread-safe on its own: the
registry calls it under its lock. Time is passed in.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from ordered_sender.emulator.detectors.models import declared_view, key_value_of
from ordered_sender.emulator.recording import UnusableMessage
from ordered_sender.emulator.shapes import validate_input
from ordered_sender.emulator.wire import ApiError
from ordered_sender.limits import MESSAGES_PER_SECOND_PER_DETECTOR

_log = structlog.get_logger(__name__)

DetectorId = tuple[str, str | None]
"""A detector's model name and key value (``None`` for a model without a key)."""

Reader = tuple[str, str | None]
"""A model reading an input: its name and its ``key`` (``None`` without one)."""

InputAttributes = Callable[[str], Sequence[str] | None]
"""The ``jsonPath`` attributes an input declares, or ``None`` when the input does not exist."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a message is refused before processing, as a BatchPutMessage error entry."""

    error_code: str
    message: str


class Admission:
    """Refusals, routing and the view of a payload, for the models that read an input."""

    def __init__(
        self,
        input_attributes: InputAttributes,
        record_unusable: Callable[[UnusableMessage], None],
    ) -> None:
        self.input_attributes = input_attributes
        self._record_unusable = record_unusable
        self._arrivals: dict[DetectorId, deque[float]] = {}

    def refusal(
        self,
        input_name: str,
        payload: bytes,
        readers: Sequence[Reader],
        now: float,
        *,
        enforce_quota: bool,
    ) -> Refusal | None:
        """Why the message must be refused, if it must: a key missing, or the quota."""
        document = decoded(payload)
        for name, key in readers:
            if key is not None and key_value_of(document, key) is None:
                return Refusal(
                    "InvalidRequestException",
                    f"Detector model {name!r} reads input {input_name!r} and is keyed by "
                    f"{key!r}, which the payload does not hold"
                    + ("" if document is not None else " (the payload is not JSON)")
                    + "; no detector can receive it",
                )
        if not enforce_quota or document is None:
            return None
        for detector_id in self.targets(input_name, document, readers, None, now):
            if len(self._recent_arrivals(detector_id, now)) >= MESSAGES_PER_SECOND_PER_DETECTOR:
                model_name, key_value = detector_id
                key = "" if key_value is None else f" with key value {key_value!r}"
                return Refusal(
                    "ThrottlingException",
                    f"The detector of model {model_name!r}{key} already received "
                    f"{MESSAGES_PER_SECOND_PER_DETECTOR} messages in the last second (quota); "
                    "send more slowly",
                )
        return None

    def view(
        self, input_name: str, payload: bytes, message_id: str, now: float
    ) -> tuple[Any, dict[str, Any]] | None:
        """The decoded payload and what detectors see of it; ``None`` (recorded) if not JSON."""
        document = decoded(payload)
        if document is None:
            self.unusable(message_id, input_name, None, "payload_not_json", now)
            return None
        declared = self.input_attributes(input_name) or ()
        visible, missing = declared_view(document, declared)
        if declared and len(missing) == len(declared):
            self.unusable(
                message_id,
                input_name,
                None,
                "attributes_missing",
                now,
                f"none of the attributes input {input_name!r} declares ({list(declared)}) is in "
                "the payload; detectors evaluate it with all of them undefined",
            )
        return document, visible

    def targets(
        self,
        input_name: str,
        document: Any,
        readers: Sequence[Reader],
        message_id: str | None,
        now: float,
    ) -> list[DetectorId]:
        """The detectors a message reaches; a key value DescribeDetector would refuse reaches
        none of its model (recorded when ``message_id`` is given)."""
        found: list[DetectorId] = []
        for name, key in readers:
            if key is None:
                found.append((name, None))
                continue
            key_value = key_value_of(document, key)
            if key_value is None:
                continue
            try:
                validate_input(
                    "iotevents-data",
                    "DescribeDetector",
                    {"detectorModelName": name, "keyValue": key_value},
                )
            except ApiError as error:
                if message_id is not None:
                    self.unusable(
                        message_id, input_name, name, "key_value_invalid", now, error.message
                    )
                continue
            found.append((name, key_value))
        return found

    def arrived(self, detector_id: DetectorId, now: float) -> None:
        """Count a message that reached ``detector_id`` (for the quota)."""
        self._recent_arrivals(detector_id, now).append(now)

    def forget(self, model_name: str | None = None) -> None:
        """Drop the arrivals of one model's detectors, or of all."""
        for detector_id in [d for d in self._arrivals if model_name in (None, d[0])]:
            del self._arrivals[detector_id]

    def unusable(
        self,
        message_id: str,
        input_name: str,
        model_name: str | None,
        reason: str,
        now: float,
        detail: str = "",
    ) -> None:
        """Log (without the payload) and record what detectors could not use."""
        _log.warning(
            f"detector.{reason}",
            input_name=input_name,
            message_id=message_id,
            detector_model_name=model_name,
            detail=detail,
        )
        self._record_unusable(
            UnusableMessage(message_id, input_name, model_name, reason, detail, now)
        )

    def _recent_arrivals(self, detector_id: DetectorId, now: float) -> deque[float]:
        arrivals = self._arrivals.setdefault(detector_id, deque())
        while arrivals and arrivals[0] <= now - 1.0:
            arrivals.popleft()
        return arrivals


def decoded(payload: bytes) -> Any:
    """The JSON payload, or ``None`` when it is not JSON."""
    try:
        return json.loads(payload)
    except ValueError:
        return None
