"""A local AWS IoT Events endpoint (the emulator) that boto3 reaches with ``endpoint_url``.

AWS ended IoT Events on 2026-05-20; this endpoint stands in for it, faithful to the documented
behaviour of BatchPutMessage (validation, random processing order within a request, messageId
de-duplication over five minutes, error entries) and of the input control plane, with seeded
fault injection and recordings that tests read::

    from ordered_sender.emulator import Emulator, Faults

    with Emulator(seed=7, faults=Faults(entry_error_rate=0.1)) as emu:
        emu.create_input("PressureInput")
        client = emu.client("iotevents-data")
        client.batch_put_message(messages=[...])
        emu.processed("PressureInput")   # what was processed, in processing order

Detector models run in it too (``emu.detectors``, a ``DetectorService``): CreateDetectorModel and
the rest of the detector control plane through boto3's ``iotevents`` client, DescribeDetector and
ListDetectors through ``iotevents-data``, timers on the emulator's clock, the ``iotEvents`` action
performed (its message goes to the named input's detectors), and an action log of every action
aimed at another service (``emu.detectors.actions()``, ``GET /_emulator/actions``).

Modules: ``wire`` (requests, responses, errors, route table), ``shapes`` (validation against the
botocore service models), ``inputs`` (input registry and control plane), ``batch_put`` (the data
plane), ``faults``, ``recording``, ``inspection`` (``/_emulator`` HTTP paths), ``server`` (the only
module with threads), ``emulator`` (assembly), ``durable`` (``--state``: the state in a SQLite
file), ``cli``; the subpackages ``expressions`` (the expression language, pure) and
``detectors`` (detector models, detectors, timers, the action log). The endpoint depends on
nothing of the sender but the shared API limits (``ordered_sender.limits``); a test that drives
its clock passes ``ordered_sender.testing``'s ``ManualClock``.

Seams for another module (e.g. a detector-model runtime) to plug in without editing these files:

- ``emu.add_processor(fn)``: ``fn(ProcessedMessage)`` receives every processed message, after
  de-duplication and in processing order, under the data-plane lock (so it sees a total order);
- ``emu.add_gate(fn)``: ``fn(ProcessedMessage) -> EntryError | None`` may refuse a message just
  before it is processed (e.g. the per-detector 10 messages/s quota, as ThrottlingException);
- ``emu.add_route(method, template, handler)``: serve more operations (``handler(ApiRequest) ->
  ApiResponse``, raising ``ApiError`` for AWS errors); templates such as
  ``/detectors/{detectorModelName}`` fill ``ApiRequest.path_parameters``;
- ``emu.inputs``: the ``InputRegistry`` (``exists``, ``get``, ``all``, ``add_delete_guard`` so
  DeleteInput answers ResourceInUseException while a detector model uses the input);
- ``emu.clock``: the injected clock, to read time from the same source;
- ``emu.record_unusable(UnusableMessage)``: put in the endpoint's record what of a processed
  message a plugged-in module could not use (read back with ``emu.unusable()``);
- ``shapes.validate_input(service, operation, document)``: AWS-style validation of any operation.
"""

from ordered_sender.emulator.batch_put import Gate, Processor
from ordered_sender.emulator.detectors.routes import DetectorService
from ordered_sender.emulator.emulator import Emulator
from ordered_sender.emulator.faults import ENTRY_ERROR_CODES, Faults, TargetedFault
from ordered_sender.emulator.recording import (
    EmulatorStats,
    EntryError,
    InjectedFault,
    ProcessedMessage,
    RecordedRequest,
    RequestedMessage,
    UnusableMessage,
)
from ordered_sender.emulator.wire import ApiError, ApiRequest, ApiResponse

__all__ = [
    "ENTRY_ERROR_CODES",
    "ApiError",
    "ApiRequest",
    "ApiResponse",
    "DetectorService",
    "Emulator",
    "EmulatorStats",
    "EntryError",
    "Faults",
    "Gate",
    "InjectedFault",
    "ProcessedMessage",
    "Processor",
    "RecordedRequest",
    "RequestedMessage",
    "TargetedFault",
    "UnusableMessage",
]
