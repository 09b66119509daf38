"""``ordered-sender send``: JSON-lines files into the outbox, in file order, then delivered.

Every file is read and checked before the first message is stored, so a bad line anywhere leaves
the outbox as it was.
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
    outbox_option,
    policy_option,
    region_option,
    transport_option,
)
from ordered_sender.cli.progress import counted, deliver_with_progress, interrupt_as_event
from ordered_sender.config import SenderConfig
from ordered_sender.errors import InvalidMessage
from ordered_sender.lanes import ByInput, ByInputAndKey, LaneFunction
from ordered_sender.message import check_input_name
from ordered_sender.outbox import Outbox
from ordered_sender.sender import OrderedSender


@click.command("send")
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
