"""The endpoint a demonstration talks to, and the two ways of sending to it.

Every demonstration compares a naive client (BatchPutMessage requests of up to ten messages,
which IoT Events processes in no guaranteed order) with ``OrderedSender`` on the same messages,
against fresh detectors, and reads the detectors back through ``iotevents-data`` as any client
would.

``Endpoint.of_emulator`` wraps the ``ordered-sender demo`` command's embedded endpoint, which is
already running; ``Endpoint.at_url`` reaches another one with boto3's usual credentials. This
module prints nothing and leaves what to show to the command.
"""

from __future__ import annotations

import json
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import boto3
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from ordered_sender import LaneFunction, OrderedSender, SenderConfig
from ordered_sender.emulator import Emulator

BATCH_SIZE = 10
"""Messages per BatchPutMessage request: the documented maximum, which a naive client fills."""

DELIVERY_TIMEOUT_SECONDS = 60.0
"""How long a demonstration waits, by default, for the ordered sender to deliver its messages."""

Payload = Mapping[str, Any]
Outgoing = tuple[str, Payload]
"""One message to send: the input name and the JSON payload."""


@dataclass(frozen=True, slots=True)
class DetectorReading:
    """A detector's state and variables as DescribeDetector returned them (values are text)."""

    state_name: str
    variables: tuple[tuple[str, str], ...] = ()


class EndpointUnfit(Exception):
    """The endpoint cannot run the demonstrations; the message says why and what to do."""


class SendFailed(Exception):
    """Messages of a demonstration were refused or not delivered in time; the message says which."""


class Judged(Protocol):
    """One thing a comparison judges: what its events imply and what each run left."""

    @property
    def expected(self) -> object: ...

    @property
    def naive(self) -> object: ...

    @property
    def ordered(self) -> object: ...


class NaiveAgainstOrdered:
    """The counts of a comparison of a naive and an ordered run, mixed into a result dataclass
    whose ``outcomes`` are ``Judged``."""

    __slots__ = ()
    outcomes: tuple[Judged, ...]

    @property
    def as_expected(self) -> bool:
        """The ordered run got everything right; the naive run is expected not to."""
        return self.ordered_wrong == 0

    @property
    def naive_wrong(self) -> int:
        return sum(outcome.naive != outcome.expected for outcome in self.outcomes)

    @property
    def ordered_wrong(self) -> int:
        return sum(outcome.ordered != outcome.expected for outcome in self.outcomes)


class Endpoint:
    """boto3 clients for one IoT Events endpoint."""

    def __init__(self, url: str, control: Any, data: Any) -> None:
        self.url = url
        self.control = control
        """An ``iotevents`` client: inputs and detector models."""
        self.data = data
        """An ``iotevents-data`` client: BatchPutMessage, DescribeDetector, ListDetectors."""

    @classmethod
    def of_emulator(cls, emulator: Emulator) -> Endpoint:
        """A started emulator."""
        return cls(
            emulator.endpoint_url, emulator.client("iotevents"), emulator.client("iotevents-data")
        )

    @classmethod
    def at_url(cls, url: str, region: str | None) -> Endpoint:
        """Another endpoint, reached with boto3's usual credentials."""
        session = boto3.session.Session()
        return cls(
            url,
            session.client("iotevents", endpoint_url=url, region_name=region),
            session.client("iotevents-data", endpoint_url=url, region_name=region),
        )

    def install_detector_model(self, inputs: Sequence[Payload], model: Payload) -> None:
        """Create the inputs if missing and the detector model afresh, so it has no detectors.

        ``EndpointUnfit`` when nothing answers at the URL or the endpoint has no detector models.
        """
        try:
            self._install_detector_model(inputs, model)
        except EndpointConnectionError as error:
            raise EndpointUnfit(
                f"nothing answers at --endpoint-url {self.url} ({error}); start the endpoint "
                "or leave the option out to use the embedded one"
            ) from error
        except NoCredentialsError as error:
            raise EndpointUnfit(
                f"no AWS credentials to sign requests to {self.url}; set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY (any values do for a local endpoint)"
            ) from error
        except ClientError as error:
            raise EndpointUnfit(
                f"the endpoint at {self.url} could not set up detector model "
                f"{model['detectorModelName']!r}: {error}; the detector demonstrations need an "
                "endpoint with IoT Events detector models (the embedded one has them: leave out "
                "--endpoint-url)"
            ) from error

    def _install_detector_model(self, inputs: Sequence[Payload], model: Payload) -> None:
        for request in inputs:
            try:
                self.control.create_input(**request)
            except ClientError as error:
                if _error_code(error) != "ResourceAlreadyExistsException":
                    raise
                self._check_existing_input(request)
        try:
            self.control.delete_detector_model(detectorModelName=model["detectorModelName"])
        except ClientError as error:
            if _error_code(error) != "ResourceNotFoundException":
                raise
        self.control.create_detector_model(**model)

    def _check_existing_input(self, request: Payload) -> None:
        """An input of that name already there must declare the attributes the model reads:
        a detector model sees only the declared attributes of its inputs."""
        name = request["inputName"]
        wanted = _attributes(request["inputDefinition"])
        found = self.control.describe_input(inputName=name)["input"]["inputDefinition"]
        if not wanted <= _attributes(found):
            raise EndpointUnfit(
                f"input {name!r} already exists at {self.url} without the attributes "
                f"{', '.join(sorted(wanted - _attributes(found)))} that the detector model "
                "reads; delete that input there, or leave out --endpoint-url to use the "
                "embedded endpoint"
            )

    def reading(self, model_name: str, key_value: str) -> DetectorReading:
        """One detector's state and variables, through DescribeDetector."""
        detector = self.data.describe_detector(detectorModelName=model_name, keyValue=key_value)
        state = detector["detector"]["state"]
        variables = tuple(sorted((v["name"], v["value"]) for v in state["variables"]))
        return DetectorReading(state["stateName"], variables)


class Sender(Protocol):
    """Sends messages to an endpoint; returns once the endpoint has taken all of them."""

    def send(self, messages: Sequence[Outgoing]) -> None: ...


class NaiveSender:
    """What a client without ``ordered_sender`` does: fill requests of ten and send them."""

    def __init__(self, endpoint: Endpoint) -> None:
        self._data = endpoint.data

    def send(self, messages: Sequence[Outgoing]) -> None:
        for start in range(0, len(messages), BATCH_SIZE):
            request = [
                {
                    # Fresh ids: the endpoint ignores an id it has seen in the last 5 minutes.
                    "messageId": uuid.uuid4().hex,
                    "inputName": input_name,
                    "payload": json.dumps(payload).encode(),
                }
                for input_name, payload in messages[start : start + BATCH_SIZE]
            ]
            response = self._data.batch_put_message(messages=request)
            if response["BatchPutMessageErrorEntries"]:
                # A naive client has no retries: a refused message is simply lost.
                raise SendFailed(
                    f"the endpoint refused messages of the naive run: "
                    f"{response['BatchPutMessageErrorEntries']}"
                )


class OrderedRun:
    """An ``OrderedSender`` whose ``send`` puts the messages and waits until they are delivered."""

    def __init__(self, sender: OrderedSender, timeout: float) -> None:
        self._sender = sender
        self._timeout = timeout

    def send(self, messages: Sequence[Outgoing]) -> None:
        self._sender.put_many(messages)
        if not self._sender.flush(timeout=self._timeout):
            raise SendFailed(
                f"the ordered run was not delivered within {self._timeout} s: "
                f"{self._sender.counts()}; paused lanes: {self._sender.paused_lanes()}"
            )


@contextmanager
def ordered_run(
    endpoint: Endpoint, lane: LaneFunction, *, timeout: float = DELIVERY_TIMEOUT_SECONDS
) -> Iterator[OrderedRun]:
    """An ``OrderedRun`` with ``lane`` on a temporary outbox, closed and removed on exit."""
    with (
        tempfile.TemporaryDirectory(prefix="ordered-sender-demo-") as directory,
        OrderedSender(
            Path(directory) / "outbox.db", endpoint.data, SenderConfig(lane=lane)
        ) as sender,
    ):
        yield OrderedRun(sender, timeout)


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _attributes(input_definition: Payload) -> set[str]:
    return {attribute["jsonPath"] for attribute in input_definition.get("attributes", ())}
