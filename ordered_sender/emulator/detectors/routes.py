"""Detector models over HTTP, plugged into an ``Emulator`` through its seams.

``DetectorService.install(emu)`` adds, on the emulator's one endpoint:

- the ``iotevents`` control plane: CreateDetectorModel, DescribeDetectorModel,
  ListDetectorModels, ListDetectorModelVersions, UpdateDetectorModel, DeleteDetectorModel;
- the ``iotevents-data`` detector operations: DescribeDetector, ListDetectors,
  BatchUpdateDetector and BatchDeleteDetector;
- ``GET /_emulator/actions[?detectorModelName=X]`` -> ``{"actions": [ActionRecord.to_json()]}``
  and ``DELETE /_emulator/actions``: the log of actions aimed at other services;
- a processor (every processed message reaches the detectors), a gate (the optional
  ten-messages-per-second-per-detector quota, refused as ThrottlingException) and a delete guard
  (DeleteInput answers ResourceInUseException while a model reads the input).

Timers fire lazily and exactly on time: before any message is evaluated and before any read is
answered, every timer due on the emulator's clock fires, earliest first. So no thread is needed,
and with a ``ManualClock`` (``ordered_sender.testing``) a test advances the clock and then
observes. Handlers parse and validate the request against the service model;
``DetectorRegistry`` does the rest.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from ordered_sender.emulator.batch_put import Gate, Processor
from ordered_sender.emulator.detectors.registry import DetectorRegistry
from ordered_sender.emulator.detectors.state import (
    ActionRecord,
    Detector,
    variable_text,
    variable_value,
)
from ordered_sender.emulator.inputs import InputRegistry
from ordered_sender.emulator.recording import EntryError, ProcessedMessage, UnusableMessage
from ordered_sender.emulator.shapes import input_shape, validate_input
from ordered_sender.emulator.wire import ApiError, ApiRequest, ApiResponse, Handler, JsonObject

ACTIONS_PATH = "/_emulator/actions"

BATCH_UPDATE_MAX_VARIABLES = 10
"""Developer guide, "Example: HVAC temperature control", BatchUpdateDetector example: a request
setting 13 variables is answered "An error occurred (InvalidRequestException) when calling the
BatchUpdateDetector operation: Number of variables in the detector exceeds the limit 10" (the
whole request, not an error entry). The same example's detector holds 13 variables set by
setVariable, so the limit is read as one of BatchUpdateDetector, not of detectors."""

_DEFAULT_PAGE_SIZE = 250
"""Page size when a List request gives no ``maxResults`` (the service model's maximum)."""

_Item = TypeVar("_Item")


class EmulatorSeams(Protocol):
    """What ``DetectorService.install`` needs of an ``Emulator`` (its documented seams)."""

    clock: Callable[[], float]
    region: str
    inputs: InputRegistry

    def record_unusable(self, message: UnusableMessage) -> None: ...
    def add_processor(self, processor: Processor) -> None: ...
    def add_gate(self, gate: Gate) -> None: ...
    def add_route(self, method: str, template: str, handler: Handler) -> None: ...


class DetectorService:
    """The HTTP face of a ``DetectorRegistry``; ``registry`` is there for Python callers."""

    def __init__(self, registry: DetectorRegistry, clock: Callable[[], float]) -> None:
        self.registry = registry
        self._clock = clock

    @classmethod
    def install(
        cls, emulator: EmulatorSeams, *, enforce_detector_quota: bool = False
    ) -> DetectorService:
        """Plug detector models into ``emulator``: routes, processor, gate and delete guard."""
        inputs = emulator.inputs

        def input_attributes(input_name: str) -> tuple[str, ...] | None:
            try:
                return inputs.get(input_name).attribute_json_paths
            except ApiError:
                return None

        registry = DetectorRegistry(
            input_attributes=input_attributes,
            region=emulator.region,
            enforce_detector_quota=enforce_detector_quota,
            record_unusable=emulator.record_unusable,
        )
        service = cls(registry, emulator.clock)
        for method, template, handler in service.routes():
            emulator.add_route(method, template, handler)
        emulator.add_processor(service.process)
        emulator.add_gate(service.admit)
        emulator.inputs.add_delete_guard(service.input_in_use)
        return service

    def routes(self) -> Sequence[tuple[str, str, Handler]]:
        return (
            ("POST", "/detector-models", self.create_detector_model),
            ("GET", "/detector-models", self.list_detector_models),
            ("GET", "/detector-models/{detectorModelName}", self.describe_detector_model),
            ("POST", "/detector-models/{detectorModelName}", self.update_detector_model),
            ("DELETE", "/detector-models/{detectorModelName}", self.delete_detector_model),
            (
                "GET",
                "/detector-models/{detectorModelName}/versions",
                self.list_detector_model_versions,
            ),
            ("GET", "/detectors/{detectorModelName}/keyValues", self.describe_detector),
            ("GET", "/detectors/{detectorModelName}", self.list_detectors),
            ("POST", "/detectors", self.batch_update_detector),
            ("POST", "/detectors/delete", self.batch_delete_detector),
            ("GET", ACTIONS_PATH, self.list_actions),
            ("DELETE", ACTIONS_PATH, self.clear_actions),
        )

    # Python API ----------------------------------------------------------------------------

    def tick(self) -> int:
        """Fire the timers due on the emulator's clock now; returns how many fired."""
        return self.registry.tick(self._clock())

    def detector(self, model_name: str, key_value: str | None = None) -> Detector:
        """One detector as it is now on the emulator's clock (due timers fired first)."""
        self.tick()
        return self.registry.detector(model_name, key_value)

    def actions(self, detector_model_name: str | None = None) -> list[ActionRecord]:
        """Recorded actions (after firing due timers), oldest first, of one model or all."""
        self.tick()
        return [
            record
            for record in self.registry.actions()
            if detector_model_name is None or record.model_name == detector_model_name
        ]

    # Seams ---------------------------------------------------------------------------------

    def process(self, message: ProcessedMessage) -> None:
        self.registry.process(
            message.input_name, message.payload, message.message_id, message.processed_at
        )

    def admit(self, message: ProcessedMessage) -> EntryError | None:
        refusal = self.registry.admit(message.input_name, message.payload, message.processed_at)
        if refusal is None:
            return None
        return EntryError(message.message_id, refusal.error_code, refusal.message)

    def input_in_use(self, input_name: str) -> str | None:
        readers = self.registry.models_reading(input_name)
        return f"detector models {readers} read it; delete them first" if readers else None

    # Control plane -------------------------------------------------------------------------

    def create_detector_model(self, request: ApiRequest) -> ApiResponse:
        document = request.json_body()
        validate_input("iotevents", "CreateDetectorModel", document)
        model = self.registry.create_model(document, self._clock())
        return ApiResponse(
            200, {"detectorModelConfiguration": model.configuration(status="ACTIVATING")}
        )

    def update_detector_model(self, request: ApiRequest) -> ApiResponse:
        document = {**request.json_body(), **request.path_parameters}
        validate_input("iotevents", "UpdateDetectorModel", document)
        model = self.registry.update_model(document, self._clock())
        return ApiResponse(
            200, {"detectorModelConfiguration": model.configuration(status="ACTIVATING")}
        )

    def describe_detector_model(self, request: ApiRequest) -> ApiResponse:
        document = _query_document(request, "iotevents", "DescribeDetectorModel")
        model = self.registry.model(
            document["detectorModelName"], document.get("detectorModelVersion")
        )
        return ApiResponse(
            200,
            {
                "detectorModel": {
                    "detectorModelDefinition": model.definition,
                    "detectorModelConfiguration": model.configuration(),
                }
            },
        )

    def list_detector_models(self, request: ApiRequest) -> ApiResponse:
        document = _query_document(request, "iotevents", "ListDetectorModels")
        models = self.registry.models()
        page, body = _page(models, [m.name for m in models], document)
        body["detectorModelSummaries"] = [
            {
                key: value
                for key, value in model.configuration().items()
                if key in ("detectorModelName", "detectorModelDescription", "creationTime")
            }
            for model in page
        ]
        return ApiResponse(200, body)

    def list_detector_model_versions(self, request: ApiRequest) -> ApiResponse:
        document = _query_document(request, "iotevents", "ListDetectorModelVersions")
        versions = self.registry.versions(document["detectorModelName"])
        page, body = _page(versions, [f"{int(v.version):012d}" for v in versions], document)
        body["detectorModelVersionSummaries"] = [
            {
                key: value
                for key, value in version.configuration().items()
                if key not in ("detectorModelDescription", "key")
            }
            for version in page
        ]
        return ApiResponse(200, body)

    def delete_detector_model(self, request: ApiRequest) -> ApiResponse:
        document = _query_document(request, "iotevents", "DeleteDetectorModel")
        self.registry.delete_model(document["detectorModelName"])
        return ApiResponse(204)

    # Data plane reads ----------------------------------------------------------------------

    def describe_detector(self, request: ApiRequest) -> ApiResponse:
        document = _query_document(request, "iotevents-data", "DescribeDetector")
        self.tick()
        detector = self.registry.detector(document["detectorModelName"], document.get("keyValue"))
        described = _summary(detector)
        described["state"] = {
            "stateName": detector.state_name,
            "variables": [
                {"name": name, "value": variable_text(value)}
                for name, value in sorted(detector.variables.items())
            ],
            # Whole seconds, as the service shows them (the guide's DescribeDetector outputs).
            "timers": [
                {"name": timer.name, "timestamp": math.floor(timer.expires_at)}
                for timer in sorted(detector.timers.values(), key=lambda t: t.name)
            ],
        }
        return ApiResponse(200, {"detector": described})

    def list_detectors(self, request: ApiRequest) -> ApiResponse:
        document = _query_document(request, "iotevents-data", "ListDetectors")
        self.tick()
        detectors = [
            detector
            for detector in self.registry.detectors(document["detectorModelName"])
            if document.get("stateName") in (None, detector.state_name)
        ]
        page, body = _page(detectors, [d.key_value or "" for d in detectors], document)
        body["detectorSummaries"] = [_summary(detector) for detector in page]
        return ApiResponse(200, body)

    def batch_update_detector(self, request: ApiRequest) -> ApiResponse:
        document = request.json_body()
        validate_input("iotevents-data", "BatchUpdateDetector", document)
        for position, entry in enumerate(document["detectors"], start=1):
            count = len(entry["state"]["variables"])
            if count > BATCH_UPDATE_MAX_VARIABLES:
                raise ApiError.invalid_request(
                    "Number of variables in the detector exceeds the limit "
                    f"{BATCH_UPDATE_MAX_VARIABLES}: detectors.{position} (messageId "
                    f"{entry['messageId']!r}) sets {count}"
                )
        self.tick()
        now = self._clock()

        def update(entry: JsonObject) -> None:
            state = entry["state"]
            self.registry.set_detector(
                entry["detectorModelName"],
                entry.get("keyValue"),
                state["stateName"],
                {v["name"]: variable_value(v["value"]) for v in state["variables"]},
                {timer["name"]: timer["seconds"] for timer in state["timers"]},
                now,
            )

        errors = _each_entry(document["detectors"], update)
        return ApiResponse(200, {"batchUpdateDetectorErrorEntries": errors})

    def batch_delete_detector(self, request: ApiRequest) -> ApiResponse:
        document = request.json_body()
        validate_input("iotevents-data", "BatchDeleteDetector", document)

        def delete(entry: JsonObject) -> None:
            self.registry.delete_detector(entry["detectorModelName"], entry.get("keyValue"))

        errors = _each_entry(document["detectors"], delete)
        return ApiResponse(200, {"batchDeleteDetectorErrorEntries": errors})

    # Action log ----------------------------------------------------------------------------

    def list_actions(self, request: ApiRequest) -> ApiResponse:
        records = self.actions(request.query.get("detectorModelName"))
        return ApiResponse(200, {"actions": [record.to_json() for record in records]})

    def clear_actions(self, request: ApiRequest) -> ApiResponse:
        self.registry.clear_actions()
        return ApiResponse(204)


def _each_entry(
    entries: Sequence[JsonObject], operation: Callable[[JsonObject], None]
) -> list[JsonObject]:
    """Apply ``operation`` to each entry; a refused entry becomes an error entry, not a 4xx."""
    errors: list[JsonObject] = []
    for entry in entries:
        try:
            operation(entry)
        except ApiError as error:
            errors.append(
                {
                    "messageId": entry["messageId"],
                    "errorCode": error.code,
                    "errorMessage": error.message,
                }
            )
    return errors


def _summary(detector: Detector) -> JsonObject:
    summary: JsonObject = {
        "detectorModelName": detector.model_name,
        "detectorModelVersion": detector.model_version,
        "state": {"stateName": detector.state_name},
        "creationTime": detector.creation_time,
        "lastUpdateTime": detector.last_update_time,
    }
    if detector.key_value is not None:
        summary["keyValue"] = detector.key_value
    return summary


def _query_document(request: ApiRequest, service: str, operation: str) -> JsonObject:
    """A body-less request as the operation's members (URI and query string), validated.

    Query values arrive as text; members the model declares as integers are converted first.
    """
    shape = input_shape(service, operation)
    document: JsonObject = {}
    for member_name, member in shape.members.items():
        wire_name = member.serialization.get("name", member_name)
        location = member.serialization.get("location")
        source = request.path_parameters if location == "uri" else request.query
        if wire_name not in source:
            continue
        text = source[wire_name]
        document[member_name] = _integer(wire_name, text) if member.type_name == "integer" else text
    validate_input(service, operation, document)
    return document


def _integer(wire_name: str, text: str) -> int:
    if text.lstrip("-").isdigit():
        return int(text)
    raise ApiError.invalid_request(
        f"Value '{text}' at '{wire_name}' failed to satisfy constraint: Member must be an integer"
    )


def _page(
    items: Sequence[_Item], sort_keys: Sequence[str], document: JsonObject
) -> tuple[list[_Item], JsonObject]:
    """One page of ``items`` (ordered by ``sort_keys``) and the response's ``nextToken``.

    The token is the sort key of the last item handed out, so a page stays correct when items
    before it are deleted between calls.
    """
    ordered = sorted(zip(sort_keys, items, strict=True), key=lambda pair: pair[0])
    token = document.get("nextToken")
    if token is not None and not isinstance(token, str):
        raise ApiError.invalid_request(f"Value '{token}' at 'nextToken' is not a string")
    remaining = [pair for pair in ordered if token is None or pair[0] > token]
    size: int = document.get("maxResults", _DEFAULT_PAGE_SIZE)
    page = remaining[:size]
    body: dict[str, Any] = {}
    if len(remaining) > size:
        body["nextToken"] = page[-1][0]
    return [item for _, item in page], body
