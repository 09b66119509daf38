"""The detector models, their detector instances and the action log of one emulator.

``DetectorRegistry`` is the stateful side of the detector runtime: it stores model versions,
routes every processed message to the detectors of the models that read its input (one detector
per key value), fires timers when the clock passes them, enforces the optional per-detector
message quota, performs the ``iotEvents`` action and keeps the log of actions aimed at other
services. The evaluation rules live in ``runtime``; HTTP lives in ``routes``.

Which messages are refused, which detectors a message reaches and what they see of it is
``admission``'s part.

The ``iotEvents`` action sends its payload (the default JSON payload, or the evaluated content)
to the named input, as BatchPutMessage would (developer guide, "Using AWS IoT Events to monitor
your IoT devices": "Information about the detector model instance and the event that initiated
the action are fed back into the system as an input with the name that you specify"). Such
messages are evaluated after the message or timer that caused them, in the order sent, under
the same lock; a chain longer than ``MAX_CHAINED_MESSAGES`` stops and is recorded.

Time is always passed in (``now``), never read here. All methods are safe from any thread: the
data plane calls ``process`` under its own lock, the control plane and ``tick`` come from other
threads, and one lock of this class orders them all.
"""

from __future__ import annotations

import json
import math
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import structlog

from ordered_sender.emulator.detectors.admission import (
    Admission,
    DetectorId,
    InputAttributes,
    Reader,
    Refusal,
)
from ordered_sender.emulator.detectors.analysis import check_publishable, undeclared_attributes
from ordered_sender.emulator.detectors.models import (
    DetectorModelError,
    DetectorModelVersion,
    EvaluationMethod,
    compile_definition,
)
from ordered_sender.emulator.detectors.runtime import (
    evaluate,
    expire_timer,
    fixed_timers,
    start_detector,
)
from ordered_sender.emulator.detectors.snapshot import (
    detector_from_json,
    detector_to_json,
    version_from_json,
    version_to_json,
)
from ordered_sender.emulator.detectors.state import (
    ActionRecord,
    Detector,
    RunnableModel,
    Trigger,
)
from ordered_sender.emulator.expressions.context import TriggerType, VariableValue
from ordered_sender.emulator.inputs import ACCOUNT_ID
from ordered_sender.emulator.recording import UnusableMessage
from ordered_sender.emulator.wire import ApiError

_log = structlog.get_logger(__name__)

DETECTOR_MODELS_PER_INPUT = 10
"""Developer guide quota: at most ten detector models read one input."""

MAX_CHAINED_MESSAGES = 100
"""Most messages ``iotEvents`` actions may send in answer to one message or timer expiry."""


class DetectorRegistry:
    """Detector models, detectors and actions; see the module docstring."""

    def __init__(
        self,
        *,
        input_attributes: InputAttributes,
        region: str = "us-east-1",
        enforce_detector_quota: bool = False,
        record_unusable: Callable[[UnusableMessage], None] = lambda message: None,
    ) -> None:
        self._admission = Admission(input_attributes, record_unusable)
        self._region = region
        self.enforce_detector_quota = enforce_detector_quota
        """Refuse a message that would be the 11th within one second for one detector."""
        self._lock = threading.RLock()
        self._versions: dict[str, list[DetectorModelVersion]] = {}
        self._detectors: dict[DetectorId, Detector] = {}
        self._actions: list[ActionRecord] = []
        self._exports: dict[DetectorId, tuple[Detector, dict[str, Any]]] = {}
        self._outgoing: deque[ActionRecord] = deque()
        """``iotEvents`` actions performed but whose message is not evaluated yet."""
        self._sent_by_actions = 0
        self._earliest_expiry = math.inf
        """No timer expires before this; it may be earlier than the truth, never later."""

    # Control plane -------------------------------------------------------------------------

    def create_model(self, request: Mapping[str, Any], now: float) -> DetectorModelVersion:
        """Store version 1 of a shape-valid CreateDetectorModel request."""
        name = request["detectorModelName"]
        with self._lock:
            if name in self._versions:
                raise ApiError(
                    409,
                    "ResourceAlreadyExistsException",
                    f"Detector model {name!r} already exists; update it or delete it first",
                    {"resourceId": name, "resourceArn": self._arn(name)},
                )
            version = self._version(request, name, "1", request.get("key"), now, now)
            self._versions[name] = [version]
            return version

    def update_model(self, request: Mapping[str, Any], now: float) -> DetectorModelVersion:
        """Store a new version; the model's detectors are deleted and start again on new input."""
        name = request["detectorModelName"]
        with self._lock:
            latest = self.model(name)
            version = self._version(
                request,
                name,
                str(int(latest.version) + 1),
                latest.key,
                latest.creation_time,
                now,
            )
            self._versions[name].append(version)
            self._forget_detectors(name)
            return version

    def delete_model(self, name: str) -> None:
        with self._lock:
            self.model(name)
            del self._versions[name]
            self._forget_detectors(name)

    def model(self, name: str, version: str | None = None) -> DetectorModelVersion:
        """The latest (or the given) version; ResourceNotFoundException when there is none."""
        with self._lock:
            versions = self._versions.get(name)
            if versions is None:
                raise ApiError.not_found(f"Detector model {name!r} does not exist")
            if version is None:
                return versions[-1]
            for candidate in versions:
                if candidate.version == version:
                    return candidate
            raise ApiError.not_found(
                f"Detector model {name!r} has no version {version!r}; "
                f"versions are {[v.version for v in versions]}"
            )

    def versions(self, name: str) -> list[DetectorModelVersion]:
        """Every version of a model, oldest first; ResourceNotFoundException when missing."""
        with self._lock:
            self.model(name)
            return list(self._versions[name])

    def models(self) -> list[DetectorModelVersion]:
        """The latest version of every model, by name."""
        with self._lock:
            return [self._versions[name][-1] for name in sorted(self._versions)]

    def models_reading(self, input_name: str) -> list[str]:
        """Names of the models whose expressions reference ``input_name``."""
        with self._lock:
            return [
                model.name for model in self.models() if input_name in model.compiled.input_names
            ]

    # Data plane ----------------------------------------------------------------------------

    def admit(self, input_name: str, payload: bytes, now: float) -> Refusal | None:
        """Whether a message may be processed: its keys are there, and within the quota."""
        with self._lock:
            return self._admission.refusal(
                input_name,
                payload,
                self._readers(input_name),
                now,
                enforce_quota=self.enforce_detector_quota,
            )

    def process(self, input_name: str, payload: bytes, message_id: str, now: float) -> None:
        """Evaluate a processed message in every detector of every model that reads its input."""
        with self._lock:
            self._tick(now)
            self._evaluate_message(input_name, payload, message_id, now)
            self._send_outgoing(now)

    def _evaluate_message(
        self, input_name: str, payload: bytes, message_id: str, now: float
    ) -> None:
        readers = self._readers(input_name)
        if not readers:
            return
        seen = self._admission.view(input_name, payload, message_id, now)
        if seen is None:
            return
        document, visible = seen
        trigger = Trigger(TriggerType.MESSAGE, now, input_name, message_id, visible)
        for detector_id in self._admission.targets(input_name, document, readers, message_id, now):
            self._admission.arrived(detector_id, now)
            runnable = self._runnable(detector_id[0])
            existing = self._detectors.get(detector_id)
            if existing is None:
                self._store(detector_id, *start_detector(runnable, detector_id[1], trigger))
            else:
                self._store(detector_id, *evaluate(runnable, existing, trigger))

    def _send_outgoing(self, now: float) -> None:
        """Evaluate the messages of the ``iotEvents`` actions performed so far, in order."""
        sent = 0
        while self._outgoing:
            record = self._outgoing.popleft()
            target = str(record.parameters["inputName"])
            self._sent_by_actions += 1
            message_id = f"iotEvents-{self._sent_by_actions}"
            if sent == MAX_CHAINED_MESSAGES:
                self._admission.unusable(
                    message_id,
                    target,
                    record.model_name,
                    "chain_too_long",
                    now,
                    f"iotEvents actions sent {MAX_CHAINED_MESSAGES} messages in answer to one "
                    "message or timer; the rest are dropped",
                )
                self._outgoing.clear()
                return
            sent += 1
            if not self._input_exists(target):
                self._admission.unusable(
                    message_id,
                    target,
                    record.model_name,
                    "input_missing",
                    now,
                    f"the iotEvents action of event {record.event_name!r} sends to input "
                    f"{target!r}, which does not exist",
                )
                continue
            self._evaluate_message(target, record.payload.encode(), message_id, now)

    def tick(self, now: float) -> int:
        """Fire every timer due at ``now``, earliest first; returns how many fired."""
        with self._lock:
            fired = self._tick(now)
            self._send_outgoing(now)
            return fired

    def _tick(self, now: float) -> int:
        fired = 0
        with self._lock:
            # Every message ticks first; this keeps that cheap while no timer is due.
            if now < self._earliest_expiry:
                return fired
            while True:
                due = [
                    (timer.expires_at, detector_id, timer.name)
                    for detector_id, detector in self._detectors.items()
                    if (timer := detector.next_expiry()) is not None and timer.expires_at <= now
                ]
                if not due:
                    self._earliest_expiry = min(
                        (
                            timer.expires_at
                            for detector in self._detectors.values()
                            if (timer := detector.next_expiry()) is not None
                        ),
                        default=math.inf,
                    )
                    return fired
                expires_at, detector_id, timer_name = min(due, key=_due_order)
                runnable = self._runnable(detector_id[0])
                detector = self._detectors[detector_id]
                self._store(detector_id, *expire_timer(runnable, detector, timer_name, expires_at))
                fired += 1

    # Reading -------------------------------------------------------------------------------

    def detector(self, model_name: str, key_value: str | None = None) -> Detector:
        """One detector; ResourceNotFoundException when the model or the detector is missing."""
        with self._lock:
            model = self.model(model_name)
            if model.key is None:
                key_value = None
            detector = self._detectors.get((model_name, key_value))
        if detector is None:
            raise ApiError.not_found(
                f"Detector model {model_name!r} has no detector for key value {key_value!r}"
            )
        return detector

    def detectors(self, model_name: str) -> list[Detector]:
        """The detectors of a model, by key value."""
        with self._lock:
            self.model(model_name)
            found = [d for (name, _), d in self._detectors.items() if name == model_name]
        return sorted(found, key=lambda d: d.key_value or "")

    def set_detector(
        self,
        model_name: str,
        key_value: str | None,
        state_name: str,
        variables: Mapping[str, VariableValue],
        timer_seconds: Mapping[str, int],
        now: float,
    ) -> Detector:
        """Put a detector (created if missing) into a state, as BatchUpdateDetector does.

        Variables and timers are replaced, not merged; no event runs.
        """
        with self._lock:
            model = self.model(model_name)
            if state_name not in model.compiled.states:
                raise ApiError.invalid_request(
                    f"Detector model {model_name!r} has no state {state_name!r}; "
                    f"states are {sorted(model.compiled.states)}"
                )
            try:
                timers = fixed_timers(timer_seconds, now)
            except ValueError as error:
                raise ApiError.invalid_request(str(error)) from error
            detector_id = (model_name, None if model.key is None else key_value)
            existing = self._detectors.get(detector_id)
            detector = replace(
                existing or Detector.initial(self._runnable(model_name), detector_id[1], now),
                state_name=state_name,
                variables=dict(variables),
                timers=timers,
                expired_timers=frozenset(),
                last_update_time=now,
            )
            self._store(detector_id, detector, ())
            return detector

    def delete_detector(self, model_name: str, key_value: str | None) -> None:
        """Delete one detector, as BatchDeleteDetector does; it starts afresh on new input."""
        with self._lock:
            detector = self.detector(model_name, key_value)
            del self._detectors[(model_name, detector.key_value)]

    def actions(self) -> list[ActionRecord]:
        """Every recorded action, oldest first."""
        with self._lock:
            return list(self._actions)

    def clear_actions(self) -> None:
        with self._lock:
            self._actions.clear()

    # Durability ----------------------------------------------------------------------------

    def export(self) -> dict[str, Any]:
        """Model versions and detectors as a JSON document (``snapshot``), for ``--state``."""
        with self._lock:
            if len(self._exports) > len(self._detectors):
                self._exports = {
                    id_: cached for id_, cached in self._exports.items() if id_ in self._detectors
                }
            return {
                "models": [
                    [version_to_json(version) for version in versions]
                    for versions in self._versions.values()
                ],
                "detectors": [self._exported(id_, d) for id_, d in self._detectors.items()],
            }

    def _exported(self, detector_id: DetectorId, detector: Detector) -> dict[str, Any]:
        """``detector`` as JSON; the same document while the detector is unchanged (detectors
        are frozen and replaced on change), so a saver can skip what it already wrote."""
        cached = self._exports.get(detector_id)
        if cached is not None and cached[0] is detector:
            return cached[1]
        document = detector_to_json(detector)
        self._exports[detector_id] = (detector, document)
        return document

    def restore(self, document: Mapping[str, Any]) -> None:
        """Replace models and detectors with those of an ``export`` document."""
        with self._lock:
            exists = self._input_exists
            self._versions = {
                versions[0]["name"]: [version_from_json(v, exists) for v in versions]
                for versions in document["models"]
            }
            detectors = [detector_from_json(d) for d in document["detectors"]]
            self._detectors = {(d.model_name, d.key_value): d for d in detectors}
            self._admission.forget()
            # Restored timers may be due already: the next tick looks at all of them.
            self._earliest_expiry = -math.inf

    def _input_exists(self, input_name: str) -> bool:
        return self._admission.input_attributes(input_name) is not None

    # Internals -----------------------------------------------------------------------------

    def _version(
        self,
        request: Mapping[str, Any],
        name: str,
        version: str,
        key: str | None,
        creation_time: float,
        now: float,
    ) -> DetectorModelVersion:
        try:
            compiled = compile_definition(request["detectorModelDefinition"], self._input_exists)
            check_publishable(compiled)
        except DetectorModelError as error:
            raise ApiError.invalid_request(str(error)) from error
        for location, names, reference in undeclared_attributes(
            compiled, self._admission.input_attributes
        ):
            _log.warning(
                "detector_model.undeclared_attribute",
                detector_model_name=name,
                location=location,
                names=names,
                reference=reference,
                detail="the input does not declare this attribute, so it is always undefined",
            )
        for input_name in sorted(compiled.input_names):
            readers = [model for model in self.models_reading(input_name) if model != name]
            if len(readers) >= DETECTOR_MODELS_PER_INPUT:
                raise ApiError(
                    410,
                    "LimitExceededException",
                    f"Input {input_name!r} is already read by {len(readers)} detector models "
                    f"(quota {DETECTOR_MODELS_PER_INPUT}): {readers}",
                )
        return DetectorModelVersion(
            name=name,
            version=version,
            arn=self._arn(name),
            definition=json.loads(json.dumps(request["detectorModelDefinition"])),
            compiled=compiled,
            description=request.get("detectorModelDescription"),
            role_arn=request["roleArn"],
            key=key,
            evaluation_method=EvaluationMethod(request.get("evaluationMethod", "BATCH")),
            creation_time=creation_time,
            last_update_time=now,
        )

    def _arn(self, name: str) -> str:
        return f"arn:aws:iotevents:{self._region}:{ACCOUNT_ID}:detectorModel/{name}"

    def _runnable(self, model_name: str) -> RunnableModel:
        model = self._versions[model_name][-1]
        return RunnableModel(model.name, model.version, model.compiled, model.evaluation_method)

    def _readers(self, input_name: str) -> list[Reader]:
        return [(name, self._versions[name][-1].key) for name in self.models_reading(input_name)]

    def _store(
        self, detector_id: DetectorId, detector: Detector, records: tuple[ActionRecord, ...]
    ) -> None:
        self._detectors[detector_id] = detector
        self._actions.extend(records)
        self._outgoing.extend(record for record in records if record.action_type == "iotEvents")
        timer = detector.next_expiry()
        if timer is not None:
            self._earliest_expiry = min(self._earliest_expiry, timer.expires_at)

    def _forget_detectors(self, model_name: str) -> None:
        for detector_id in [d for d in self._detectors if d[0] == model_name]:
            del self._detectors[detector_id]
        self._admission.forget(model_name)


def _due_order(due: tuple[float, DetectorId, str]) -> tuple[float, str, str, str]:
    expires_at, (model_name, key_value), timer_name = due
    return expires_at, model_name, key_value or "", timer_name
