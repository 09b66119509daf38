"""The ``ordered-sender`` command: demo, send, run, status, resume and the local endpoint.

The command is an application, so it is the one place that configures structlog (the library only
logs). Every error a user can act on becomes a one-line message and a non-zero exit, never a
traceback: ``OrderedSenderGroup.invoke`` translates them in one place.
"""

from __future__ import annotations

import logging
import math
import os
import sys
from pathlib import Path
from typing import Any, BinaryIO

import botocore.exceptions
import click
import structlog
from rich.console import Console

from ordered_sender.cli_demo import demo_command
from ordered_sender.cli_jsonl import BadLine, Line, decoded_lines, read_lines
from ordered_sender.cli_operate import (
    dead_letters_group,
    opened_store,
    outbox_option,
    print_paused,
    resume_command,
    status_command,
)
from ordered_sender.cli_progress import counted, deliver_with_progress, interrupt_as_event
from ordered_sender.config import SenderConfig
from ordered_sender.emulator.cli import emulator_command
from ordered_sender.errors import InvalidMessage, OrderedSenderError
from ordered_sender.lanes import ByInput, ByInputAndKey, LaneFunction
from ordered_sender.message import check_input_name
from ordered_sender.outbox import Outbox
from ordered_sender.sender import OrderedSender
from ordered_sender.transport import Transport
from ordered_sender.transport.http import HttpTransport
from ordered_sender.transport.iotevents import IotEventsTransport, build_client

LOG_LEVELS = ("debug", "info", "warning", "error")
HELP_OPTION_NAMES = ["-h", "--help"]
"""Every command takes ``-h`` as well as ``--help``; subcommands inherit it from the group."""
RUN_CHECK_SECONDS = 0.5
"""How often ``run`` looks whether its sender stopped for good."""


class OrderedSenderGroup(click.Group):
    """The command group; turns errors a user can act on into a message and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (OrderedSenderError, BadLine) as error:
            raise click.ClickException(str(error)) from error
        except botocore.exceptions.NoRegionError as error:
            raise click.ClickException(
                "no AWS region is configured: pass --region or set AWS_DEFAULT_REGION"
            ) from error
        except OSError as error:
            # A missing directory or a file without permission, named by the OS.
            raise click.ClickException(f"{error.strerror}: {error.filename}") from error


@click.group(cls=OrderedSenderGroup, context_settings={"help_option_names": HELP_OPTION_NAMES})
@click.option(
    "--log-level",
    type=click.Choice(LOG_LEVELS),
    default="warning",
    show_default=True,
    help="Least severe library event written to stderr.",
)
@click.option("--log-json", is_flag=True, help="Write log events as JSON lines.")
@click.version_option(package_name="ordered-sender")
def main(log_level: str, log_json: bool) -> None:
    """Send messages to AWS IoT Events in guaranteed per-lane order, durably.

    Start with `ordered-sender demo`: it needs no AWS account.
    """
    configure_logging(log_level, as_json=log_json)


def configure_logging(level: str, *, as_json: bool) -> None:
    """Library events to stderr, filtered by level, so stdout keeps the command's own output."""
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=stderr_wants_colors())
    )
    processors: list[Any] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if as_json:
        processors.append(structlog.processors.format_exc_info)
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=current_stderr_logger,
        cache_logger_on_first_use=False,
    )


def stderr_wants_colors() -> bool:
    """Colours only for a person at a terminal: not in a file or a pipe, and never when NO_COLOR
    is set to anything (https://no-color.org)."""
    return sys.stderr.isatty() and not os.environ.get("NO_COLOR")


def current_stderr_logger(*args: Any) -> structlog.PrintLogger:
    # Looked up per event: while a rich progress bar is live, sys.stderr is rich's proxy, which
    # prints a log line above the bar instead of through it.
    return structlog.PrintLogger(sys.stderr)


class PositiveSeconds(click.ParamType[float, "str | float"]):
    """A positive, finite number of seconds: 0, negatives, nan and inf are usage errors."""

    name = "seconds"

    def convert(
        self, value: str | float, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        try:
            seconds = float(value)
        except ValueError:
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        if not (math.isfinite(seconds) and seconds > 0):
            self.fail(f"takes a positive finite number of seconds, got {value!r}", param, ctx)
        return seconds


endpoint_option = click.option(
    "--endpoint-url",
    help="IoT Events endpoint, e.g. the URL `ordered-sender emulator` prints. Default: the "
    "configured one (AWS_ENDPOINT_URL_IOTEVENTS_DATA, AWS_ENDPOINT_URL, the profile's "
    "endpoint_url), else AWS for the region.",
)
region_option = click.option("--region", help="AWS region. Default: from the environment.")
TRANSPORTS = ("http", "boto3")
transport_option = click.option(
    "--transport",
    type=click.Choice(TRANSPORTS),
    default="http",
    show_default=True,
    help="http: the lean transport (botocore's credentials and signer, its own keep-alive "
    "HTTP; over 2x boto3's requests per CPU second). boto3: an iotevents-data client, for "
    "whoever needs boto3's own behaviour. Both read the same AWS configuration.",
)
policy_option = click.option(
    "--on-permanent-failure",
    type=click.Choice(["pause", "dead_letter"]),
    default="pause",
    show_default=True,
    help="A message that fails for good pauses its lane until `resume`, or moves to the dead "
    "letters (`dead-letters list|redrive|drop`) while its lane goes on.",
)


def open_sender(
    outbox: Path,
    endpoint_url: str | None,
    region: str | None,
    config: SenderConfig,
    *,
    deliver: bool,
    create: bool = True,
    transport: str = "http",
) -> OrderedSender:
    """A sender on ``outbox`` with a ``transport`` (one of TRANSPORTS) to the endpoint;
    ``deliver=False`` sends nothing, ``create=False`` refuses a file that is not an outbox
    already."""
    sends: Transport
    if transport == "boto3":
        client = build_client(
            timeout=config.request_timeout, endpoint_url=endpoint_url, region_name=region
        )
        sends = IotEventsTransport(client)
    else:
        sends = HttpTransport.from_environment(
            endpoint_url=endpoint_url,
            region_name=region,
            timeout=config.request_timeout,
            max_connections=config.concurrency,
        )
    return OrderedSender(outbox, config=config, transport=sends, autostart=deliver, create=create)


@main.command("send")
@click.argument("files", nargs=-1, required=True, type=click.File("rb"))
@outbox_option
@click.option("--input-name", help="Every line is a bare payload object for this input.")
@click.option("--lane-key", help="Payload attribute that splits each input into lanes.")
@endpoint_option
@region_option
@transport_option
@click.option(
    "--wait/--no-wait",
    default=True,
    show_default=True,
    help="Deliver until flushed, or only store the messages (for `ordered-sender run`).",
)
@click.option(
    "--timeout", type=PositiveSeconds(), help="Seconds to wait for delivery. Default: no limit."
)
@policy_option
def send_command(
    files: tuple[BinaryIO, ...],
    outbox: Path,
    input_name: str | None,
    lane_key: str | None,
    endpoint_url: str | None,
    region: str | None,
    transport: str,
    wait: bool,
    timeout: float | None,
    on_permanent_failure: str,
) -> None:
    """Put every message of JSON-lines FILES (`-` is stdin), in file order, then deliver.

    Each line is {"inputName": ..., "payload": {...}, "messageId": optional, "timestamp":
    optional ms}, or, with --input-name, the payload object itself. A file is stored whole or not
    at all: a bad line is reported with its line number and nothing of that file is stored.
    """
    if input_name is not None:
        try:
            check_input_name(input_name)
        except InvalidMessage as error:
            raise click.BadParameter(str(error), param_hint="--input-name") from None
    lane: LaneFunction = ByInput() if lane_key is None else ByInputAndKey(lane_key)
    config = SenderConfig(lane=lane, on_permanent_failure=on_permanent_failure)  # type: ignore[arg-type]
    console = Console()
    if not wait:
        # Only putting: no delivery lock, so this works while `ordered-sender run` delivers.
        with Outbox(outbox, config) as only_puts:
            stored = put_files(only_puts, files, input_name, config, console)
        console.print(
            f"{counted(stored, 'message')} stored in {outbox}; deliver with `ordered-sender run`"
        )
        return
    with open_sender(
        outbox, endpoint_url, region, config, deliver=True, transport=transport
    ) as sender:
        already_pending = sender.counts().pending
        stored = put_files(sender, files, input_name, config, console)
        with interrupt_as_event() as interrupted:
            outcome = deliver_with_progress(
                sender, console, total=already_pending + stored, timeout=timeout, stop=interrupted
            )
        console.print(outcome.summary)
        if not outcome.complete:
            print_paused(console, sender.paused_lanes())
            sys.exit(1)


def put_files(
    target: Outbox | OrderedSender,
    files: tuple[BinaryIO, ...],
    input_name: str | None,
    config: SenderConfig,
    console: Console,
) -> int:
    """Store every line of every file, in order, each file whole or not at all."""
    stored = 0
    for file in files:
        lines = read_lines(
            file.name,
            decoded_lines(file.name, file),
            input_name=input_name,
            check=config.lane,
            max_payload_bytes=config.max_payload_bytes_per_request,
        )
        put_lines(target, file.name, lines)
        stored += len(lines)
        console.print(f"stored {counted(len(lines), 'message')} from {file.name}")
    return stored


def put_lines(target: Outbox | OrderedSender, source: str, lines: list[Line]) -> None:
    """Store the lines of one file, in order, all or none."""
    try:
        target.put_many(
            (m.input_name, m.payload, m.message_id, m.timestamp_ms)
            for m in (line.message for line in lines)
        )
    except InvalidMessage as error:
        # Every line was checked on reading; what is left is an id the outbox already holds.
        if error.field != "message_id":
            raise
        number = next(line.number for line in lines if line.message.message_id == error.value)
        raise BadLine(
            source,
            number,
            InvalidMessage(
                "messageId",
                error.value,
                "is already used by a message in this outbox; give each message its own id",
            ),
        ) from None


@main.command("run")
@outbox_option
@endpoint_option
@region_option
@transport_option
@policy_option
def run_command(
    outbox: Path,
    endpoint_url: str | None,
    region: str | None,
    transport: str,
    on_permanent_failure: str,
) -> None:
    """Deliver the outbox until SIGTERM or Ctrl-C, then stop cleanly.

    Requests in flight finish; everything else stays in the outbox for the next run. The outbox
    must exist (`send` or an `Outbox` creates it). If the file is deleted or replaced while it
    runs, it stops and exits with status 1.
    """
    config = SenderConfig(on_permanent_failure=on_permanent_failure)  # type: ignore[arg-type]
    with interrupt_as_event() as stop:
        sender = open_sender(
            outbox, endpoint_url, region, config, deliver=True, create=False, transport=transport
        )
        before = sender.counts()
        click.echo(
            f"delivering {outbox}: {before.pending} pending in {counted(before.lanes, 'lane')}; "
            "stop with Ctrl-C or SIGTERM"
        )
        while not stop.wait(RUN_CHECK_SECONDS) and sender.failure is None:
            pass
        failure = sender.failure
        click.echo("stopping: finishing requests in flight")
        sender.close()
    if failure is not None:
        raise click.ClickException(failure)
    # Counted after close, so the outcomes of the requests that were in flight are included.
    with opened_store(outbox, read_only=True) as store:
        after = store.counts()
    click.echo(
        f"stopped: {counted(after.pending, 'message')} kept in {outbox} "
        f"({counted(after.paused_lanes, 'paused lane')}, "
        f"{counted(after.dead_letters, 'dead letter')})"
    )


main.add_command(status_command)
main.add_command(resume_command)
main.add_command(dead_letters_group)
main.add_command(demo_command)
main.add_command(emulator_command)
