"""Where the demo sends: the embedded endpoint it starts, or another one it is pointed at, and
cleaning up after itself there.

On another endpoint the demo creates its inputs and the motor model only where missing, and
deletes again exactly what it created, so a standalone ``ordered-sender emulator`` is left as it
was (a detector model left behind would evaluate, and warn about, every later message to its
input).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.config
import botocore.exceptions
import click
from rich.console import Console
from rich.text import Text

from ordered_sender.cli.demo import motors
from ordered_sender.cli.demo.endpoint import Endpoint
from ordered_sender.cli.demo.verdict import (
    LANE_KEY,
    EndpointRecord,
    embedded_record,
    remote_record,
)
from ordered_sender.emulator import Faults
from ordered_sender.emulator.emulator import Emulator
from ordered_sender.transport.iotevents import build_client


@dataclass(frozen=True, slots=True)
class Target:
    """Where the demo sends, and how it reads back what arrived."""

    endpoint_url: str
    client: Any
    """A boto3 ``iotevents-data`` client for the endpoint."""
    read_record: Callable[[], EndpointRecord | None]
    before: EndpointRecord | None
    """The record before the demo sent anything, on an endpoint that may have counted already."""
    detector_endpoint: Callable[[], Endpoint]
    """The endpoint ready for the motor comparison, once the first part is done."""


def faultless_endpoint(emulator: Emulator) -> Endpoint:
    """The embedded endpoint with its faults off: a naive client has no retries, and the point
    of the comparison is the order inside a request, which the endpoint still shuffles."""
    emulator.set_faults(Faults())
    return Endpoint.of_emulator(emulator)


def embedded_target(stack: ExitStack, emulator: Emulator, input_names: Sequence[str]) -> Target:
    """Start ``emulator`` (stopped when ``stack`` closes) with the demo inputs."""
    # Nothing in the demo may look for AWS credentials on a metadata service.
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    stack.enter_context(emulator)
    for name in input_names:
        emulator.create_input(name, (LANE_KEY,))
    return Target(
        endpoint_url=emulator.endpoint_url,
        client=emulator.client("iotevents-data"),
        read_record=functools.partial(embedded_record, emulator),
        before=None,
        detector_endpoint=functools.partial(faultless_endpoint, emulator),
    )


def remote_target(
    console: Console,
    stack: ExitStack,
    endpoint_url: str,
    region: str | None,
    input_names: Sequence[str],
    timeout: float,
) -> Target:
    """Another endpoint, with the demo inputs created there if they are missing; those it
    created are deleted again when ``stack`` closes, so the endpoint is left as it was."""
    control = control_client(endpoint_url, region)
    created = create_inputs(control, endpoint_url, input_names)
    stack.callback(delete_inputs, console, control, created)
    return Target(
        endpoint_url=endpoint_url,
        client=build_client(timeout=timeout, endpoint_url=endpoint_url, region_name=region),
        read_record=functools.partial(remote_record, endpoint_url),
        before=remote_record(endpoint_url),
        detector_endpoint=functools.partial(Endpoint.at_url, endpoint_url, region),
    )


def control_client(endpoint_url: str, region: str | None) -> Any:
    """An ``iotevents`` client (inputs, detector models) for another endpoint."""
    return boto3.session.Session().client(
        "iotevents",
        endpoint_url=endpoint_url,
        region_name=region,
        config=botocore.config.Config(retries={"total_max_attempts": 1}, connect_timeout=5.0),
    )


def error_code(error: botocore.exceptions.ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code"))


def create_inputs(control: Any, endpoint_url: str, names: Sequence[str]) -> list[str]:
    """Create the demo inputs on another endpoint; an input that exists already is fine.
    Returns the names it created."""
    created = []
    for name in names:
        try:
            control.create_input(
                inputName=name, inputDefinition={"attributes": [{"jsonPath": LANE_KEY}]}
            )
            created.append(name)
        except botocore.exceptions.ClientError as error:
            if error_code(error) != "ResourceAlreadyExistsException":
                raise click.ClickException(
                    f"could not create input {name!r} at {endpoint_url}: {error}"
                ) from error
        except botocore.exceptions.BotoCoreError as error:
            # No credentials, no region, nothing listening: nothing to demonstrate against.
            raise click.ClickException(
                f"could not create input {name!r} at {endpoint_url}: {error}"
            ) from error
    return created


def delete_inputs(console: Console, control: Any, names: Sequence[str]) -> None:
    """Delete inputs the demo created."""
    for name in names:
        delete_if_present(console, f"input {name!r}", control.delete_input, inputName=name)


def delete_if_present(
    console: Console, what: str, delete: Callable[..., object], **parameters: str
) -> None:
    """Clean up after the demo: one already gone (or an endpoint without such things) is fine,
    and a failure is said, never raised, so that it cannot hide the demo's verdict."""
    try:
        delete(**parameters)
    except botocore.exceptions.ClientError as error:
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if error_code(error) != "ResourceNotFoundException" and status != 404:
            console.print(Text(f"could not delete {what}: {error}", style="yellow"))
    except botocore.exceptions.BotoCoreError as error:
        console.print(Text(f"could not delete {what}: {error}", style="yellow"))


def input_exists(endpoint: Endpoint, name: str) -> bool:
    """Whether the endpoint has input ``name``; True when it cannot tell, so that nothing the
    demo did not create is deleted."""
    try:
        endpoint.control.describe_input(inputName=name)
    except botocore.exceptions.ClientError as error:
        return error_code(error) != "ResourceNotFoundException"
    return True


def remove_motor_model(console: Console, endpoint: Endpoint, *, delete_input: bool) -> None:
    """Delete the motor model (and its input when the demo created it): left on a standalone
    endpoint, the model would evaluate, and warn about, every later message to that input."""
    delete_if_present(
        console,
        f"detector model {motors.MODEL_NAME!r}",
        endpoint.control.delete_detector_model,
        detectorModelName=motors.MODEL_NAME,
    )
    if delete_input:
        delete_if_present(
            console,
            f"input {motors.INPUT_NAME!r}",
            endpoint.control.delete_input,
            inputName=motors.INPUT_NAME,
        )
