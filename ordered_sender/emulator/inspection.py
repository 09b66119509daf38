"""The emulator's private HTTP API under ``/_emulator``: recordings and faults over HTTP.

For a process that runs the emulator standalone (``ordered-sender emulator``) and a test or demo
that reads what it saw:

- ``GET /_emulator/processed[?inputName=X]`` -> ``{"processed": [ProcessedMessage, ...]}``
  (``payload`` base64-encoded, like the AWS wire format);
- ``GET /_emulator/requests`` -> ``{"requests": [RecordedRequest, ...]}``;
- ``GET /_emulator/stats`` -> ``EmulatorStats`` as an object;
- ``GET /_emulator/unusable`` -> ``{"unusable": [UnusableMessage, ...]}``: what detectors could
  not use of a message (not JSON, invalid key value, declared attributes missing...);
- ``DELETE /_emulator/record`` -> 204: forget the record (processed, requests, stats, unusable);
  the endpoint's state stays;
- ``GET /_emulator/faults`` and ``PUT /_emulator/faults`` (body: ``Faults.to_json()`` shape,
  omitted fields default) to read and replace the active faults.

Keys are the Python field names. AWS has no such paths, so no AWS client will ever call them.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import asdict

from ordered_sender.emulator.faults import Faults
from ordered_sender.emulator.recording import ProcessedMessage, Recorder
from ordered_sender.emulator.wire import ApiError, ApiRequest, ApiResponse, JsonObject, Router

PREFIX = "/_emulator"


def processed_to_json(message: ProcessedMessage) -> JsonObject:
    document = asdict(message)
    document["payload"] = base64.b64encode(message.payload).decode()
    return document


class InspectionApi:
    """Handlers of the ``/_emulator`` paths."""

    def __init__(
        self,
        recorder: Recorder,
        get_faults: Callable[[], Faults],
        set_faults: Callable[[Faults], None],
    ) -> None:
        self._recorder = recorder
        self._get_faults = get_faults
        self._set_faults = set_faults

    def register(self, router: Router) -> None:
        router.add("GET", f"{PREFIX}/processed", self.processed)
        router.add("GET", f"{PREFIX}/requests", self.requests)
        router.add("GET", f"{PREFIX}/stats", self.stats)
        router.add("GET", f"{PREFIX}/unusable", self.unusable)
        router.add("DELETE", f"{PREFIX}/record", self.reset)
        router.add("GET", f"{PREFIX}/faults", self.faults)
        router.add("PUT", f"{PREFIX}/faults", self.replace_faults)

    def processed(self, request: ApiRequest) -> ApiResponse:
        messages = self._recorder.processed(request.query.get("inputName"))
        return ApiResponse(200, {"processed": [processed_to_json(m) for m in messages]})

    def requests(self, request: ApiRequest) -> ApiResponse:
        return ApiResponse(200, {"requests": [asdict(r) for r in self._recorder.requests()]})

    def stats(self, request: ApiRequest) -> ApiResponse:
        return ApiResponse(200, asdict(self._recorder.stats()))

    def unusable(self, request: ApiRequest) -> ApiResponse:
        return ApiResponse(200, {"unusable": [asdict(m) for m in self._recorder.unusable()]})

    def reset(self, request: ApiRequest) -> ApiResponse:
        self._recorder.reset()
        return ApiResponse(204)

    def faults(self, request: ApiRequest) -> ApiResponse:
        return ApiResponse(200, self._get_faults().to_json())

    def replace_faults(self, request: ApiRequest) -> ApiResponse:
        try:
            faults = Faults.from_json(request.json_body())
        except (TypeError, ValueError) as error:
            raise ApiError.invalid_request(f"Faults refused: {error}") from error
        self._set_faults(faults)
        return ApiResponse(200, faults.to_json())
