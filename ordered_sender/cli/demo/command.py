"""``ordered-sender demo``: thousands of messages through faults, then proof they arrived in order.

By default the demo starts the local IoT Events endpoint with faults on (whole-request errors,
entry errors, dropped connections, shuffled batches; seeded), puts messages for several lanes into a
temporary outbox, delivers them with a progress bar, and then checks, from the endpoint's own record
of what it processed, that every lane arrived complete, in order and without duplicates. With
``--endpoint-url`` it sends elsewhere, and the check needs that endpoint's ``/_emulator`` record.

Then, on the same endpoint (faults off) unless ``--no-detectors``, it runs the motor comparison of
``motors``: a detector model fed the same readings in naive batches and in order; an endpoint
without detector models skips it with the reason. The verdict lives in
``verdict``, what it prints of the first part in ``report``, where it sends in ``targets``; this
module never sends anywhere it was not pointed at.
"""

from __future__ import annotations

import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

import botocore.config
import botocore.exceptions
import click
import tenacity
from rich.console import Console
from rich.text import Text

from ordered_sender.cli.demo import motors
from ordered_sender.cli.demo.endpoint import EndpointUnfit, SendFailed
from ordered_sender.cli.demo.report import (
    print_report,
    say_complete_and_in_order,
    say_what_arrived_in_order,
)
from ordered_sender.cli.demo.targets import (
    Target,
    embedded_target,
    input_exists,
    remote_target,
    remove_motor_model,
)
from ordered_sender.cli.demo.verdict import (
    DEMO_INPUTS,
    LANE_KEY,
    EndpointRecord,
    Verdict,
    check_lanes,
    exit_status,
    plan_demo,
    stats_since,
)
from ordered_sender.cli.options import (
    PositiveSeconds,
    endpoint_option,
    profile_option,
    region_option,
    require_credentials,
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
from ordered_sender.emulator import Faults
from ordered_sender.emulator.emulator import Emulator
from ordered_sender.lanes import ByInputAndKey
from ordered_sender.sender import OrderedSender

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
            require_credentials()
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
            Text(
                f"in-order check unavailable: {target.endpoint_url} keeps no /_emulator "
                "record (it is not an ordered-sender emulator)",
                style="yellow",
            )
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
        Text.assemble(
            ("Why order matters to a detector model", "bold"),
            ": the developer guide's motor model, fed the same pressure readings twice, each "
            "time afresh",
        )
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
