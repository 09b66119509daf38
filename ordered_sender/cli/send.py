"""``ordered-sender send``: JSON-lines files into the outbox, in file order, then delivered.

Every file is read and checked before the first message is stored, and all of them are stored in
one transaction, so a bad line anywhere leaves the outbox as it was: fix it and run the same
command again.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import BinaryIO

import click
from rich.console import Console

from ordered_sender.cli.jsonl import BadLine, Line, decoded_lines, read_lines
from ordered_sender.cli.operate import print_paused
from ordered_sender.cli.options import (
    PositiveSeconds,
    endpoint_option,
    open_sender,
    opened_store,
    outbox_option,
    policy_option,
    profile_option,
    progress_option,
    region_option,
    transport_option,
)
from ordered_sender.cli.output import stdout_console
from ordered_sender.cli.progress import (
    counted,
    deliver_with_progress,
    interrupt_as_event,
    outcome_after_close,
)
from ordered_sender.config import SenderConfig
from ordered_sender.errors import InvalidMessage
from ordered_sender.lanes import ByInput, ByInputAndKey, LaneFunction
from ordered_sender.message import check_input_name
from ordered_sender.outbox import Outbox
from ordered_sender.sender import OrderedSender

STALL_SECONDS = 120.0
"""Default of --stall-timeout: longer than the default retry backoff's cap (30 s) several times
over, so a lane that is only backing off is not given up on."""


@click.command("send")
@click.argument("files", nargs=-1, required=True, type=click.File("rb"))
@outbox_option
@click.option("--input-name", help="Every line is a bare payload object for this input.")
@click.option("--lane-key", help="Payload attribute that splits each input into lanes.")
@endpoint_option()
@region_option
@profile_option
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
@click.option(
    "--stall-timeout",
    type=PositiveSeconds(),
    default=STALL_SECONDS,
    show_default=True,
    help="Stop waiting when no message was delivered for this many seconds (an endpoint that "
    "refuses every request, say); what is left stays in the outbox for `run`.",
)
@policy_option
@progress_option
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
    stall_timeout: float,
    on_permanent_failure: str,
    progress_every: float,
) -> None:
    """Put every message of JSON-lines FILES (`-` is stdin), in file order, then deliver.

    Each line is {"inputName": ..., "payload": {...}, "messageId": optional, "timestamp":
    optional}, or, with --input-name, the payload object itself. A payload is a JSON object. A
    timestamp is in milliseconds since the Unix epoch (or {"timeInMillis": ms}); one below
    100000000000 (before 1973) is refused as seconds, not milliseconds.

    Every file is checked before anything is stored: a bad line is reported with its file, line,
    field and value, and nothing of any file is stored. Interrupted (Ctrl-C, SIGTERM), it stops
    with exit status 130 or 143; what was not delivered stays in the outbox for `run`.
    """
    if input_name is not None:
        try:
            check_input_name(input_name)
        except InvalidMessage as error:
            raise click.BadParameter(str(error), param_hint="--input-name") from None
    lane: LaneFunction = ByInput() if lane_key is None else ByInputAndKey(lane_key)
    config = SenderConfig(lane=lane, on_permanent_failure=on_permanent_failure)  # type: ignore[arg-type]
    console = stdout_console()
    files_read = read_files(files, input_name, config)
    if not wait:
        # Only putting: no delivery lock, so this works while `ordered-sender run` delivers.
        with Outbox(outbox, config) as only_puts:
            stored = put_files(only_puts, files_read, console)
        console.print(
            f"{counted(stored, 'message')} stored in {outbox}; deliver with "
            f"`ordered-sender run --outbox {outbox}`"
        )
        return
    with open_sender(
        outbox, endpoint_url, region, config, deliver=True, transport=transport
    ) as sender:
        already_pending = sender.counts().pending
        stored = put_files(sender, files_read, console)
        with interrupt_as_event() as interrupted:
            ending, elapsed = deliver_with_progress(
                sender,
                console,
                total=already_pending + stored,
                timeout=timeout,
                stop=interrupted,
                stall_timeout=stall_timeout,
                line_seconds=progress_every,
            )
            outcome = outcome_after_close(sender, outbox, ending, elapsed)
    console.print(outcome.summary(kept_in=outbox))
    if outcome.paused_lanes:
        with opened_store(outbox, read_only=True) as store:
            print_paused(console, store.paused_lanes())
    if interrupted.is_set():
        sys.exit(interrupted.exit_status)
    if not outcome.complete:
        sys.exit(1)


FileLines = tuple[str, list[Line]]
"""A file's name and its checked lines."""


def read_files(
    files: tuple[BinaryIO, ...], input_name: str | None, config: SenderConfig
) -> list[FileLines]:
    """Every line of every file, checked; ``BadLine`` for the first bad one of any file, a
    message id used twice across the files included."""
    read: list[FileLines] = []
    where_used: dict[str, tuple[str, int]] = {}
    for file in files:
        lines = read_lines(
            file.name,
            decoded_lines(file.name, file),
            input_name=input_name,
            check=config.lane,
            max_payload_bytes=config.max_payload_bytes_per_request,
        )
        for line in lines:
            message_id = line.message.message_id
            if message_id in where_used:
                source, number = where_used[message_id]
                raise BadLine(
                    file.name,
                    line.number,
                    InvalidMessage(
                        "messageId",
                        message_id,
                        f"is already used at {source}:{number}; message ids must be unique",
                    ),
                )
            where_used[message_id] = (file.name, line.number)
        read.append((file.name, lines))
    return read


def put_files(target: Outbox | OrderedSender, files: list[FileLines], console: Console) -> int:
    """Store the lines of every file, in order, in one transaction: all or none."""
    try:
        target.put_many(
            (m.input_name, m.payload, m.message_id, m.timestamp_ms)
            for m in (line.message for _, lines in files for line in lines)
        )
    except InvalidMessage as error:
        # Every line was checked on reading; what is left is an id the outbox already holds.
        if error.field != "message_id":
            raise
        source, number = next(
            (source, line.number)
            for source, lines in files
            for line in lines
            if line.message.message_id == error.value
        )
        raise BadLine(
            source,
            number,
            InvalidMessage(
                "messageId",
                error.value,
                "is already used by a message in this outbox; give each message its own id",
            ),
        ) from None
    for source, lines in files:
        console.print(f"stored {counted(len(lines), 'message')} from {source}")
    return sum(len(lines) for _, lines in files)
