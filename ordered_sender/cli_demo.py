"""``ordered-sender demo``: thousands of messages through faults, then proof they arrived in order.

By default the demo starts the local IoT Events endpoint with faults on (whole-request errors,
entry errors, dropped connections, shuffled batches; seeded), puts messages for several lanes into a
temporary outbox, delivers them with a progress bar, and then checks, from the endpoint's own record
of what it processed, that every lane arrived complete, in order and without duplicates. With
``--endpoint-url`` it sends elsewhere, and the check needs that endpoint's ``/_emulator`` record.
The verdict (``check_lanes``) is pure; this module never sends anywhere it was not pointed at.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import botocore.exceptions
import click
import tenacity
from rich.console import Console
from rich.table import Table

from ordered_sender.cli_progress import deliver_with_progress, interrupt_as_event
from ordered_sender.config import SenderConfig
from ordered_sender.emulator import EmulatorStats, Faults
from ordered_sender.emulator.emulator import Emulator
from ordered_sender.lanes import ByInputAndKey
from ordered_sender.sender import OrderedSender
from ordered_sender.transport.iotevents import build_client

DEMO_INPUTS = ("PressureInput", "TemperatureInput", "VibrationInput")
LANE_KEY = "device"

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

EXIT_UNVERIFIED = 3
"""Exit status when everything was acknowledged but the endpoint keeps no record to check."""


@dataclass(frozen=True, slots=True)
class DemoLane:
    """One lane of the demo: an input and a device id (the lane key)."""

    input_name: str
    device: str

    @property
    def name(self) -> str:
        return f"{self.input_name}/{self.device}"


@dataclass(frozen=True, slots=True)
class PlannedMessage:
    message_id: str
    lane: DemoLane
    position: int
    """0, 1, 2, ... within its lane: the order it must be processed in."""


@dataclass(frozen=True, slots=True)
class EndpointRecord:
    """What the endpoint saw, from its own record."""

    processed_ids: tuple[str, ...]
    """Message ids in processing order."""
    sent_ids: tuple[str, ...]
    """The id of every message every request carried, retries included."""
    stats: EmulatorStats


@dataclass(frozen=True, slots=True)
class LaneReport:
    lane: DemoLane
    put: int
    processed: int
    """Distinct messages of this lane the endpoint processed."""
    in_order: bool
    """Each message processed after every message put before it in the lane."""
    duplicates: int
    """Times a message of this lane was processed again."""

    @property
    def complete(self) -> bool:
        return self.processed == self.put and self.in_order and self.duplicates == 0


def plan_demo(messages: int, lane_count: int, run_id: str) -> list[PlannedMessage]:
    """``messages`` messages spread round-robin over ``lane_count`` lanes, in put order."""
    lanes = [
        DemoLane(DEMO_INPUTS[index % len(DEMO_INPUTS)], f"device-{index + 1:03d}")
        for index in range(lane_count)
    ]
    planned = []
    for number in range(messages):
        lane = lanes[number % lane_count]
        position = number // lane_count
        message_id = f"demo-{run_id}-{number % lane_count:03d}-{position:06d}"
        planned.append(PlannedMessage(message_id, lane, position))
    return planned


def check_lanes(planned: Sequence[PlannedMessage], record: EndpointRecord) -> list[LaneReport]:
    """Per lane: was every message processed, exactly once, in put order?"""
    by_id = {message.message_id: message for message in planned}
    positions: dict[DemoLane, list[int]] = {}
    for message_id in record.processed_ids:
        message = by_id.get(message_id)
        # Another run's messages on a shared endpoint are not this demo's business.
        if message is not None:
            positions.setdefault(message.lane, []).append(message.position)
    put = Counter(message.lane for message in planned)
    reports = []
    for lane, count in put.items():
        seen = positions.get(lane, [])
        distinct = list(dict.fromkeys(seen))
        reports.append(
            LaneReport(
                lane=lane,
                put=count,
                processed=len(distinct),
                in_order=distinct == sorted(distinct),
                duplicates=len(seen) - len(distinct),
            )
        )
    return reports


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


def embedded_record(emulator: Emulator) -> EndpointRecord:
    return EndpointRecord(
        processed_ids=tuple(message.message_id for message in emulator.processed()),
        sent_ids=tuple(
            message.message_id for request in emulator.requests() for message in request.messages
        ),
        stats=emulator.stats(),
    )


def remote_record(endpoint_url: str) -> EndpointRecord | None:
    """The ``/_emulator`` record of an ordered-sender emulator; None for any other endpoint."""
    try:
        processed = _get_json(f"{endpoint_url}/_emulator/processed")["processed"]
        requests = _get_json(f"{endpoint_url}/_emulator/requests")["requests"]
        stats = _get_json(f"{endpoint_url}/_emulator/stats")
        return EndpointRecord(
            processed_ids=tuple(message["message_id"] for message in processed),
            sent_ids=tuple(
                message["message_id"] for request in requests for message in request["messages"]
            ),
            stats=EmulatorStats(**{f.name: int(stats[f.name]) for f in fields(EmulatorStats)}),
        )
    except (OSError, ValueError, KeyError, TypeError):
        # Not reachable, not JSON or not our shape: the endpoint is not an ordered-sender emulator.
        return None


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


def stats_since(before: EmulatorStats, after: EmulatorStats) -> EmulatorStats:
    """Counters of this run alone, on an endpoint that was counting already."""
    return EmulatorStats(
        **{f.name: getattr(after, f.name) - getattr(before, f.name) for f in fields(EmulatorStats)}
    )


def create_inputs(endpoint_url: str, region: str | None, names: Sequence[str]) -> None:
    """Create the demo inputs on another endpoint; an input that exists already is fine."""
    control = boto3.session.Session().client(
        "iotevents",
        endpoint_url=endpoint_url,
        region_name=region,
        config=botocore.config.Config(retries={"total_max_attempts": 1}, connect_timeout=5.0),
    )
    for name in names:
        try:
            control.create_input(
                inputName=name, inputDefinition={"attributes": [{"jsonPath": LANE_KEY}]}
            )
        except botocore.exceptions.ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ResourceAlreadyExistsException":
                raise click.ClickException(
                    f"could not create input {name!r} at {endpoint_url}: {error}"
                ) from error
        except botocore.exceptions.BotoCoreError as error:
            # No credentials, no region, nothing listening: nothing to demonstrate against.
            raise click.ClickException(
                f"could not create input {name!r} at {endpoint_url}: {error}"
            ) from error


@click.command("demo")
@click.option("--messages", type=click.IntRange(1, 1_000_000), default=3000, show_default=True)
@click.option("--lanes", type=click.IntRange(1, 1000), default=8, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True, help="Seed of faults, shuffles.")
@click.option("--no-faults", is_flag=True, help="Run the local endpoint without faults.")
@click.option(
    "--endpoint-url",
    help="Send to this endpoint instead of the embedded one (e.g. `ordered-sender emulator`).",
)
@click.option("--region", help="AWS region for --endpoint-url. Default: from the environment.")
@click.option(
    "--timeout", type=float, default=300.0, show_default=True, help="Seconds to wait for delivery."
)
def demo_command(
    messages: int,
    lanes: int,
    seed: int,
    no_faults: bool,
    endpoint_url: str | None,
    region: str | None,
    timeout: float,
) -> None:
    """Send thousands of messages through faults, then prove every lane arrived in order.

    Needs no AWS account: by default it runs a local IoT Events endpoint that fails about one
    request in five and one message in ten, drops connections and shuffles every batch.
    """
    console = Console()
    run_id = uuid.uuid4().hex[:8]
    planned = plan_demo(messages, lanes, run_id)
    input_names = DEMO_INPUTS[: min(lanes, len(DEMO_INPUTS))]
    config = SenderConfig(lane=ByInputAndKey(LANE_KEY), retry_wait=DEMO_RETRY_WAIT)
    with ExitStack() as stack:
        read_record: Callable[[], EndpointRecord | None]
        if endpoint_url is None:
            # Nothing in the demo may look for AWS credentials on a metadata service.
            os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
            faults = Faults() if no_faults else DEMO_FAULTS
            emulator = stack.enter_context(Emulator(seed=seed, faults=faults))
            for name in input_names:
                emulator.create_input(name, (LANE_KEY,))
            client = emulator.client("iotevents-data")
            console.print(f"local IoT Events endpoint at {emulator.endpoint_url}")
            console.print(describe_faults(faults, seed))
            read_record = functools.partial(embedded_record, emulator)
            before = None
        else:
            create_inputs(endpoint_url, region, input_names)
            client = build_client(
                timeout=config.request_timeout, endpoint_url=endpoint_url, region_name=region
            )
            console.print(f"sending to {endpoint_url}")
            read_record = functools.partial(remote_record, endpoint_url)
            before = read_record()
        directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="ordered-sender-demo-"))
        sender = stack.enter_context(OrderedSender(Path(directory) / "outbox.db", client, config))
        console.print(
            f"putting {messages} messages into {lanes} lanes ({', '.join(input_names)} "
            f"split by payload attribute {LANE_KEY!r}) in a temporary outbox"
        )
        started = time.monotonic()
        for start in range(0, len(planned), PUT_CHUNK):
            sender.put_many(
                (m.lane.input_name, {LANE_KEY: m.lane.device, "n": m.position}, m.message_id)
                for m in planned[start : start + PUT_CHUNK]
            )
        with interrupt_as_event() as stop:
            outcome = deliver_with_progress(
                sender, console, total=messages, timeout=timeout, stop=stop
            )
        elapsed = time.monotonic() - started
        record = read_record()
    console.print(outcome.summary)
    if record is None:
        console.print(
            f"[yellow]in-order check unavailable: {endpoint_url} keeps no /_emulator record "
            "(it is not an ordered-sender emulator)[/yellow]"
        )
        sys.exit(EXIT_UNVERIFIED if outcome.complete else 1)
    if before is not None:
        record = EndpointRecord(
            record.processed_ids, record.sent_ids, stats_since(before.stats, record.stats)
        )
    reports = check_lanes(planned, record)
    print_report(console, planned, reports, record, elapsed)
    sys.exit(0 if all(report.complete for report in reports) else 1)


def print_report(
    console: Console,
    planned: Sequence[PlannedMessage],
    reports: Sequence[LaneReport],
    record: EndpointRecord,
    elapsed: float,
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
    survived.add_row("retries (sends beyond one per message)", str(attempts - len(planned)))
    survived.add_row("request errors injected (429/500/503)", str(stats.request_errors_injected))
    survived.add_row(
        "entry errors injected", str(stats.entry_errors_injected + stats.targeted_errors_injected)
    )
    survived.add_row("connections dropped after processing", str(stats.connections_dropped))
    survived.add_row("duplicates ignored by messageId", str(stats.duplicates_ignored))
    survived.add_row("elapsed", f"{elapsed:.1f} s")
    survived.add_row("throughput", f"{len(planned) / elapsed:.0f} messages/s")
    console.print(survived)
    failed = [report.lane.name for report in reports if not report.complete]
    if failed:
        console.print(f"[red]FAILED: lanes not complete and in order: {', '.join(failed)}[/red]")
    else:
        console.print(
            f"[green]OK: all {len(reports)} lanes arrived complete and in order, "
            "without duplicates[/green]"
        )


def _yes_no(value: bool) -> str:
    return "yes" if value else "[red]no[/red]"
