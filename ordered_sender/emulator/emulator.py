"""``Emulator``: the local IoT Events endpoint, assembled and controlled from Python.

It wires the route table, the input registry, the data plane, fault injection and the recorder
together and runs them on an HTTP server bound to 127.0.0.1. See the package docstring for the
seams another module uses to plug in (processors, gates, routes, delete guards).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import boto3
from botocore.config import Config

from ordered_sender.emulator.batch_put import DataPlane, Gate, Processor
from ordered_sender.emulator.detectors.routes import DetectorService
from ordered_sender.emulator.durable import StateFile
from ordered_sender.emulator.faults import FaultInjector, Faults
from ordered_sender.emulator.inputs import InputApi, InputRegistry, InputResource
from ordered_sender.emulator.inspection import InspectionApi
from ordered_sender.emulator.recording import (
    EmulatorStats,
    ProcessedMessage,
    RecordedRequest,
    Recorder,
    UnusableMessage,
)
from ordered_sender.emulator.server import HttpServer
from ordered_sender.emulator.shapes import validate_input
from ordered_sender.emulator.sigv4 import SignatureVerifier
from ordered_sender.emulator.wire import Handler, Router
from ordered_sender.limits import MAX_PAYLOAD_BYTES_PER_REQUEST

SERVICES = ("iotevents", "iotevents-data")
"""The boto3 service names the emulator answers for, on one endpoint."""


class Emulator:
    """A local AWS IoT Events endpoint; use it as a context manager or ``start``/``stop`` it.

    ``seed`` makes message shuffling and fault decisions reproducible; ``clock`` (seconds since
    the epoch, like ``time.time``) drives de-duplication and timestamps; ``shuffle=False`` keeps
    the messages of a request in request order; ``max_payload_bytes`` is the per-request payload
    limit (AWS documents 1 KiB); ``port=0`` picks a free port; ``enforce_detector_quota``
    refuses, with ThrottlingException entries, messages past 10 per second for one detector;
    ``verify_signatures`` (access key id -> secret access key) checks every request's SigV4
    signature and refuses a bad one as AWS does (emulator/sigv4.py); None checks nothing.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        faults: Faults | None = None,
        clock: Callable[[], float] = time.time,
        shuffle: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
        max_payload_bytes: int = MAX_PAYLOAD_BYTES_PER_REQUEST,
        region: str = "us-east-1",
        enforce_detector_quota: bool = False,
        verify_signatures: Mapping[str, str] | None = None,
        state_path: Path | None = None,
    ) -> None:
        if max_payload_bytes < 1:
            raise ValueError(f"max_payload_bytes must be >= 1, got {max_payload_bytes!r}")
        self.clock = clock
        """The emulator's clock; other modules (a detector runtime) read time from it too."""
        self.region = region
        self.router = Router()
        self.inputs = InputRegistry(clock, region)
        self._recorder = Recorder()
        # Its own random stream, so changing faults never changes the shuffle order.
        self._injector = FaultInjector(faults or Faults(), random.Random(f"{seed}:faults"))
        self._data_plane = DataPlane(
            inputs=self.inputs,
            faults=self._injector,
            recorder=self._recorder,
            clock=clock,
            seed=seed,
            shuffle=shuffle,
            max_payload_bytes=max_payload_bytes,
        )
        self.router.add("POST", "/inputs/messages", self._data_plane.batch_put_message)
        InputApi(self.inputs).register(self.router)
        InspectionApi(self._recorder, lambda: self.faults, self.set_faults).register(self.router)
        self.detectors = DetectorService.install(
            self, enforce_detector_quota=enforce_detector_quota
        )
        """Detector models: their control plane, DescribeDetector/ListDetectors, timers on
        ``clock`` and the action log (``detectors.actions()``)."""
        self._verifier = (
            None if verify_signatures is None else SignatureVerifier(verify_signatures, region)
        )
        self._state_path = state_path
        self._state_file: StateFile | None = None
        if state_path is not None:
            saved = StateFile(state_path)
            try:
                document = saved.load()
            finally:
                saved.close()
            if document is not None:
                self._restore(document)
        self._server = HttpServer(
            self.router,
            host,
            port,
            check=self._verifier,
            after=None if state_path is None else self._save_state,
        )

    def start(self) -> Emulator:
        if self._state_path is not None:
            self._state_file = StateFile(self._state_path)
        try:
            self._server.start()
        except BaseException:
            self._close_state()
            raise
        return self

    def stop(self) -> None:
        self._server.stop()
        self._close_state()

    def _close_state(self) -> None:
        if self._state_file is not None:
            self._state_file.close()
            self._state_file = None

    def _save_state(self) -> None:
        # The window first: exporting it waits for a request in the data plane to finish, so
        # the detectors exported next include what that request did.
        window = self._data_plane.export_window()
        state_file = self._state_file
        if state_file is not None:
            state_file.save(
                {
                    "inputs": self.inputs.export(),
                    "deduplicationWindow": window,
                    "detectors": self.detectors.registry.export(),
                }
            )

    def _restore(self, document: Mapping[str, Any]) -> None:
        self.inputs.restore(document["inputs"])
        self._data_plane.restore_window(document["deduplicationWindow"])
        self.detectors.registry.restore(document["detectors"])

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:<port>``; only known once started."""
        host, port = self._server.address
        return f"http://{host}:{port}"

    def client(
        self, service_name: str, *, read_timeout: float = 5.0, parameter_validation: bool = True
    ) -> Any:
        """A boto3 client for ``"iotevents"`` or ``"iotevents-data"`` aimed at this emulator.

        Dummy credentials (a pair that passes ``verify_signatures``); botocore retries off (one
        attempt per call, so every attempt is seen); short timeouts.
        ``parameter_validation=False`` lets a test send what boto3 would refuse.
        """
        if service_name not in SERVICES:
            raise ValueError(f"service_name must be one of {SERVICES}, got {service_name!r}")
        config = Config(
            retries={"total_max_attempts": 1, "mode": "standard"},
            connect_timeout=2.0,
            read_timeout=read_timeout,
            parameter_validation=parameter_validation,
        )
        access_key, secret = (
            ("emulator", "emulator") if self._verifier is None else self._verifier.credentials
        )
        return boto3.client(
            service_name,
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret,
            config=config,
        )

    def create_input(
        self,
        name: str,
        attribute_json_paths: Sequence[str] = ("value",),
        description: str | None = None,
    ) -> InputResource:
        """Create an input, validated as CreateInput is (``ApiError`` if refused), without HTTP.

        Detectors see only the attributes an input declares (as on AWS), so declare every
        attribute a detector model reads; for messages no detector reads, the default
        placeholder attribute is enough.
        """
        document: dict[str, Any] = {
            "inputName": name,
            "inputDefinition": {"attributes": [{"jsonPath": p} for p in attribute_json_paths]},
        }
        if description is not None:
            document["inputDescription"] = description
        validate_input("iotevents", "CreateInput", document)
        return self.inputs.create(name, attribute_json_paths, description)

    @property
    def faults(self) -> Faults:
        return self._injector.faults

    def set_faults(self, faults: Faults) -> None:
        """Replace the active faults; the counts of targeted faults start afresh."""
        self._data_plane.set_faults(faults)

    def processed(self, input_name: str | None = None) -> list[ProcessedMessage]:
        """Processed messages in processing order, of one input or of all."""
        return self._recorder.processed(input_name)

    def requests(self) -> list[RecordedRequest]:
        """Every BatchPutMessage request received, in handling order."""
        return self._recorder.requests()

    def stats(self) -> EmulatorStats:
        return self._recorder.stats()

    def reset_record(self) -> None:
        """Forget the record: processed messages, requests, counters and unusable messages.

        The endpoint's state (inputs, the de-duplication window, detectors, the action log) is
        kept; sequence and request numbers go on from where they were.
        """
        self._recorder.reset()

    def unusable(self) -> list[UnusableMessage]:
        """What detectors could not use of messages, oldest first (``GET /_emulator/unusable``)."""
        return self._recorder.unusable()

    def record_unusable(self, message: UnusableMessage) -> None:
        """Put in the endpoint's record that detectors could not use (part of) a message."""
        self._recorder.add_unusable(message)

    def add_processor(self, processor: Processor) -> None:
        """Hand every processed message (after de-duplication, in processing order) to it."""
        self._data_plane.add_processor(processor)

    def add_gate(self, gate: Gate) -> None:
        """Let ``gate`` refuse a message with an entry error just before it would be processed."""
        self._data_plane.add_gate(gate)

    def add_route(self, method: str, template: str, handler: Handler) -> None:
        """Serve ``handler`` at ``method template``, e.g. ``GET /detectors/{detectorModelName}``."""
        self.router.add(method, template, handler)
