"""``ordered-sender demo``: thousands of messages through faults, then proof they arrived in order.

By default the demo starts the local IoT Events endpoint with faults on (whole-request errors,
entry errors, dropped connections, shuffled batches; seeded), puts messages for several lanes into a
temporary outbox, delivers them with a progress bar, and then checks, from the endpoint's own record
of what it processed, that every lane arrived complete, in order and without duplicates. With
``--endpoint-url`` it sends elsewhere, and the check needs that endpoint's ``/_emulator`` record.

Then, on the same endpoint (faults off) unless ``--no-detectors``, it runs the motor comparison of
``ordered_sender.demos.motors``: a detector model fed the same readings in naive batches and in
order; an endpoint without detector models skips it with the reason. The verdict lives in
``verdict``; this module never sends anywhere it was not pointed at.
"""

from __future__ import annotations

import functools
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import botocore.exceptions
import click
import tenacity
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ordered_sender.cli.demo.verdict import (
    DEMO_INPUTS,
    LANE_KEY,
    EndpointRecord,
    LaneReport,
    PlannedMessage,
    Verdict,
    check_lanes,
    embedded_record,
    exit_status,
    plan_demo,
    remote_record,
    stats_since,
)
from ordered_sender.cli.options import (
    PositiveSeconds,
    endpoint_option,
    profile_option,
    region_option,
)
from ordered_sender.cli.output import stdout_console
from ordered_sender.cli.progress import (
    StopRequest,
    counted,
    deliver_with_progress,
    interrupt_as_event,
    outcome_after_close,
)
from ordered_sender.config import SenderConfig
from ordered_sender.demos import motors
from ordered_sender.demos.endpoint import Endpoint, EndpointUnfit, SendFailed
from ordered_sender.emulator import Faults
from ordered_sender.emulator.emulator import Emulator
from ordered_sender.lanes import ByInputAndKey
from ordered_sender.sender import OrderedSender
from ordered_sender.transport.iotevents import build_client

DEMO_FAULTS = Faults(
    request_error_rate=0.2,
    entry_error_rate=0.1,
    drop_connection_rate=0.03,
)
"""About one request in five fails whole, one message in ten is refused, a few connections drop;
the entry errors are the transient codes, so every message must eventually arrive."""

DEMO_RETRY_WAIT = tenacity.wait_exponential(multiplier=0.01, max=0.5) + tenacity.wait_random(
    0, 0.01
)
"""Shorter than the library default (0.1 s doubling to 30 s): the local endpoint recovers at once,
and the demo should show thousands of retries in seconds rather than minutes."""

PUT_CHUNK = 500
"""Messages per put_many transaction while filling the outbox."""

DEMO_MOTORS = 20
DEMO_READINGS = 30
"""Size of the motor comparison: enough for the naive batches to get several motors wrong with
the default seed, small enough to take a few seconds."""


def describe_faults(faults: Faults, seed: int) -> str:
    """The faults in words, for the person watching the demo."""
    parts = []
    if faults.request_error_rate:
        statuses = "/".join(str(status) for status in faults.request_error_codes)
        parts.append(f"{faults.request_error_rate:.0%} of requests fail whole ({statuses})")
    if faults.entry_error_rate:
        parts.append(f"{faults.entry_error_rate:.0%} of messages are refused (transient codes)")
    if faults.drop_connection_rate:
        parts.append(
            f"{faults.drop_connection_rate:.0%} of connections drop after processing "
            "(the sender cannot know the outcome)"
        )
    faulted = "; ".join(parts) or "no faults"
    return f"faults: {faulted}; every batch is processed in shuffled order (seed {seed})"


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


@click.command("demo")
@click.option("--messages", type=click.IntRange(1, 1_000_000), default=3000, show_default=True)
@click.option("--lanes", type=click.IntRange(1, 1000), default=8, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True, help="Seed of faults, shuffles.")
@click.option("--no-faults", is_flag=True, help="Run the local endpoint without faults.")
@click.option("--no-detectors", is_flag=True, help="Skip the motor comparison on a detector model.")
@endpoint_option(
    "Send to this endpoint instead of the embedded one (e.g. `ordered-sender emulator`); what "
    "the demo creates there it deletes when done."
)
@region_option
@profile_option
@click.option(
    "--timeout",
    type=PositiveSeconds(),
    default=300.0,
    show_default=True,
    help="Seconds to wait for delivery.",
)
def demo_command(
    messages: int,
    lanes: int,
    seed: int,
    no_faults: bool,
    no_detectors: bool,
    endpoint_url: str | None,
    region: str | None,
    timeout: float,
) -> None:
    """Send thousands of messages through faults, then prove every lane arrived in order.

    Needs no AWS account: by default it runs a local IoT Events endpoint that fails about one
    request in five and one message in ten, drops connections and shuffles every batch. Then
    it feeds a detector model the same readings naively and in order, and compares.

    Exit status: 0 when every part came out right, 1 when one failed, 3 when the endpoint keeps
    no record to check the order with, 130 or 143 when stopped by Ctrl-C or SIGTERM.
    """
    console = stdout_console()
    input_names = DEMO_INPUTS[: min(lanes, len(DEMO_INPUTS))]
    config = SenderConfig(lane=ByInputAndKey(LANE_KEY), retry_wait=DEMO_RETRY_WAIT)
    with ExitStack() as stack:
        if endpoint_url is None:
            faults = Faults() if no_faults else DEMO_FAULTS
            target = embedded_target(stack, Emulator(seed=seed, faults=faults), input_names)
            console.print(f"local IoT Events endpoint at {target.endpoint_url}")
            console.print(describe_faults(faults, seed))
        else:
            target = remote_target(
                console, stack, endpoint_url, region, input_names, config.request_timeout
            )
            console.print(f"sending to {endpoint_url}")
        with interrupt_as_event() as stop:
            delivery = deliver_in_order(console, target, config, messages, lanes, timeout, stop)
        # Whoever stopped the first part with a signal wants the demo over, not its next part.
        if no_detectors or stop.is_set():
            detectors = Verdict.SKIPPED
        else:
            detectors = compare_motors(
                console, target, seed, timeout, remote=endpoint_url is not None
            )
    if stop.is_set():
        sys.exit(stop.exit_status)
    sys.exit(exit_status(delivery, detectors))


def deliver_in_order(
    console: Console,
    target: Target,
    config: SenderConfig,
    messages: int,
    lanes: int,
    timeout: float,
    stop: StopRequest,
) -> Verdict:
    """The first part: the planned messages through faults, then the check of every lane;
    ``stop`` ends the delivery early."""
    planned = plan_demo(messages, lanes, uuid.uuid4().hex[:8])
    with (
        tempfile.TemporaryDirectory(prefix="ordered-sender-demo-") as directory,
        OrderedSender(outbox := Path(directory) / "outbox.db", target.client, config) as sender,
    ):
        input_names = dict.fromkeys(message.lane.input_name for message in planned)
        console.print(
            f"putting {counted(messages, 'message')} into {counted(lanes, 'lane')} "
            f"({', '.join(input_names)} split by payload attribute {LANE_KEY!r}) "
            "in a temporary outbox"
        )
        started = time.monotonic()
        for start in range(0, len(planned), PUT_CHUNK):
            sender.put_many(
                (m.lane.input_name, {LANE_KEY: m.lane.device, "n": m.position}, m.message_id)
                for m in planned[start : start + PUT_CHUNK]
            )
        ending, _ = deliver_with_progress(
            sender,
            console,
            total=messages,
            timeout=timeout,
            stop=stop,
        )
        outcome = outcome_after_close(sender, outbox, ending, time.monotonic() - started)
    record = target.read_record()
    console.print(outcome.summary(kept_in=None))
    if record is None:
        console.print(
            f"[yellow]in-order check unavailable: {target.endpoint_url} keeps no /_emulator "
            "record (it is not an ordered-sender emulator)[/yellow]"
        )
        return Verdict.UNVERIFIED if outcome.complete else Verdict.FAILED
    if target.before is not None:
        record = EndpointRecord(
            record.processed_ids, record.sent_ids, stats_since(target.before.stats, record.stats)
        )
    reports = check_lanes(planned, record)
    delivered = len(planned) - outcome.pending
    print_report(console, planned, reports, record, outcome.elapsed_seconds, delivered)
    if stop.is_set():
        return say_what_arrived_in_order(console, reports)
    return say_complete_and_in_order(console, reports)


def compare_motors(
    console: Console, target: Target, seed: int, timeout: float, *, remote: bool
) -> Verdict:
    """The second part: the guide's motor model fed naive batches, then in order; on a
    ``remote`` endpoint, what it created there is deleted afterwards."""
    console.print()
    console.print(
        "[bold]Why order matters to a detector model[/bold]: the developer guide's motor "
        "model, fed the same pressure readings twice, each time afresh"
    )
    endpoint = target.detector_endpoint()
    try:
        with ExitStack() as cleanup:
            if remote:
                delete_input = not input_exists(endpoint, motors.INPUT_NAME)
                cleanup.callback(remove_motor_model, console, endpoint, delete_input=delete_input)
            result = motors.compare(
                endpoint,
                motors=DEMO_MOTORS,
                readings=DEMO_READINGS,
                seed=seed,
                timeout=timeout,
            )
    except EndpointUnfit as error:
        console.print(Text(f"motor comparison skipped: {error}", style="yellow"))
        return Verdict.SKIPPED
    except (
        SendFailed,
        botocore.exceptions.ClientError,
        botocore.exceptions.BotoCoreError,
    ) as error:
        console.print(Text(f"FAILED: motor comparison: {error}", style="red"))
        return Verdict.FAILED
    # A table of fixed-width text: wrapping it at a narrow terminal would break its columns.
    console.print(Text(motors.summary(result)), soft_wrap=True)
    console.print()
    verdict = motors.verdict(result)
    if result.as_expected:
        console.print(Text(f"OK: {verdict}", style="green"))
        return Verdict.RIGHT
    console.print(Text(f"FAILED: {verdict}", style="red"))
    return Verdict.FAILED


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


def print_report(
    console: Console,
    planned: Sequence[PlannedMessage],
    reports: Sequence[LaneReport],
    record: EndpointRecord,
    elapsed: float,
    delivered: int,
) -> None:
    lanes = Table(title="Per lane, from the endpoint's own record of what it processed")
    for column in ("lane", "put", "processed", "in order?", "duplicates"):
        lanes.add_column(column, justify="left" if column == "lane" else "right")
    for report in reports:
        lanes.add_row(
            report.lane.name,
            str(report.put),
            str(report.processed),
            _yes_no(report.in_order),
            str(report.duplicates),
        )
    lanes.add_section()
    lanes.add_row(
        "total",
        str(sum(r.put for r in reports)),
        str(sum(r.processed for r in reports)),
        _yes_no(all(r.in_order for r in reports)),
        str(sum(r.duplicates for r in reports)),
    )
    console.print(lanes)
    ours = {message.message_id for message in planned}
    attempts = sum(1 for message_id in record.sent_ids if message_id in ours)
    stats = record.stats
    survived = Table(title="Retries and faults survived", show_header=False)
    survived.add_column(justify="left")
    survived.add_column(justify="right")
    survived.add_row("requests sent", str(stats.requests))
    survived.add_row("message sends", str(attempts))
    first_sends = len({message_id for message_id in record.sent_ids if message_id in ours})
    survived.add_row("retries (sends beyond one per message)", str(attempts - first_sends))
    survived.add_row("request errors injected (429/500/503)", str(stats.request_errors_injected))
    survived.add_row(
        "entry errors injected", str(stats.entry_errors_injected + stats.targeted_errors_injected)
    )
    survived.add_row("connections dropped after processing", str(stats.connections_dropped))
    survived.add_row("duplicates ignored by messageId", str(stats.duplicates_ignored))
    survived.add_row("elapsed", f"{elapsed:.1f} s")
    survived.add_row("throughput", f"{delivered / elapsed:.0f} messages delivered/s")
    console.print(survived)


def say_complete_and_in_order(console: Console, reports: Sequence[LaneReport]) -> Verdict:
    failed = [report.lane.name for report in reports if not report.complete]
    if failed:
        console.print(f"[red]FAILED: lanes not complete and in order: {', '.join(failed)}[/red]")
        return Verdict.FAILED
    console.print(
        f"[green]OK: all {len(reports)} lanes arrived complete and in order, "
        "without duplicates[/green]"
    )
    return Verdict.RIGHT


def say_what_arrived_in_order(console: Console, reports: Sequence[LaneReport]) -> Verdict:
    """Stopped early, lanes are incomplete by the user's choice: what arrived is judged."""
    wrong = [report.lane.name for report in reports if not report.in_order or report.duplicates]
    if wrong:
        console.print(f"[red]FAILED: out of order or duplicated: {', '.join(wrong)}[/red]")
        return Verdict.FAILED
    console.print(
        "[yellow]stopped early: what arrived, arrived in order and without duplicates[/yellow]"
    )
    return Verdict.SKIPPED


def _yes_no(value: bool) -> str:
    return "yes" if value else "[red]no[/red]"
