"""The operator's commands: ``status``, ``pause``, ``resume`` and ``dead-letters
list|redrive|drop``.

They work on an outbox while ``ordered-sender run`` delivers it, from any process: none takes the
delivery lock, and none creates an outbox (a mistyped path is refused, never made). ``status``
opens the file read-only, so it works on a read-only file or disk.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from ordered_sender.cli.options import opened_store, outbox_option
from ordered_sender.cli.output import output_option, print_json, stdout_console
from ordered_sender.lane_state import LaneState, observed_state
from ordered_sender.store import DeadLetter, LaneOverview, PausedLane

LANES_SHOWN = 50
"""Lanes listed by ``status``: paused ones first, then the oldest heads."""


def when(timestamp: float | None) -> str:
    return "-" if timestamp is None else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(timestamp))


def seconds_from_now(timestamp: float, now: float) -> str:
    delta = timestamp - now
    return "now" if delta <= 0 else f"in {delta:.1f} s"


@click.command("status")
@outbox_option
@click.option(
    "--lanes",
    "lanes_shown",
    type=click.IntRange(0),
    default=LANES_SHOWN,
    show_default=True,
    help="Lanes listed: paused ones first, then the oldest heads.",
)
@output_option
def status_command(outbox: Path, lanes_shown: int, output: str) -> None:
    """Show pending messages, each lane's head (attempts, next attempt, last error), paused lanes
    and dead letters of an outbox (works while `run` runs, and on a read-only outbox).

    With --output json: {"outbox", "counts", "lanes", "lanes_total", "paused_lanes"}, times in
    seconds since the Unix epoch, each lane with its state (ready, backoff, paused; what a
    sender has in flight is not seen from here, so a lane paused with its head in flight shows
    paused).
    """
    with opened_store(outbox, read_only=True) as store:
        counts = store.counts()
        lanes = store.lanes_overview(lanes_shown)
        paused = store.paused_lanes()
    if output == "json":
        now = time.time()
        print_json(
            {
                "outbox": str(outbox),
                "counts": counts,
                "lanes": [{**asdict(lane), "state": lane_state(lane, now).value} for lane in lanes],
                "lanes_total": counts.lanes,
                "paused_lanes": paused,
            }
        )
        return
    console = stdout_console()
    summary = Table(title=f"Outbox {outbox}", show_header=False)
    summary.add_row("pending messages", str(counts.pending))
    summary.add_row("pending payload bytes", str(counts.pending_bytes))
    summary.add_row("lanes with pending messages", str(counts.lanes))
    summary.add_row("paused lanes", str(counts.paused_lanes))
    summary.add_row("messages held by paused lanes", str(counts.blocked))
    summary.add_row("dead letters", str(counts.dead_letters))
    console.print(summary)
    print_lanes(console, lanes, shown_of=counts.lanes)
    print_paused(console, paused)


def lane_state(lane: LaneOverview, now: float) -> LaneState:
    """The state of a lane as seen from outside the sender: nothing is known in flight, so
    never IN_FLIGHT nor PAUSED_IN_FLIGHT (a lane paused with its head in flight is PAUSED)."""
    return observed_state(
        pending=True,
        paused=lane.paused,
        in_flight=False,
        next_attempt_at=lane.next_attempt_at,
        now=now,
    )


def print_lanes(console: Console, lanes: list[LaneOverview], *, shown_of: int) -> None:
    if not lanes:
        return
    now = time.time()
    title = "Lanes" if shown_of <= len(lanes) else f"Lanes ({len(lanes)} of {shown_of})"
    table = Table(title=title)
    for column in ("lane", "state", "pending", "oldest (UTC)", "head", "attempts", "next attempt"):
        table.add_column(column, overflow="fold")
    table.add_column("last error", overflow="fold")
    for lane in lanes:
        state = lane_state(lane, now)
        error = "-" if lane.last_error_code is None else lane.last_error_code
        if lane.last_error_text:
            error = f"{error}: {lane.last_error_text}"
        table.add_row(
            lane.lane,
            state.value,
            str(lane.pending),
            when(lane.oldest_enqueued_at),
            lane.head_message_id,
            str(lane.attempts),
            "-" if lane.paused else seconds_from_now(lane.next_attempt_at, now),
            error,
        )
    console.print(table)


def print_paused(console: Console, paused: list[PausedLane]) -> None:
    if not paused:
        return
    table = Table(title="Paused lanes (ordered-sender resume --outbox PATH LANE)")
    for column in ("lane", "at message", "error", "reason", "paused since (UTC)"):
        table.add_column(column, overflow="fold")
    for lane in paused:
        table.add_row(
            lane.lane, lane.message_id, lane.error_code, lane.error_text, when(lane.paused_at)
        )
    console.print(table)


@click.command("pause")
@outbox_option
@click.argument("lane")
@click.option("--reason", help="Why, shown by `status` with the paused lane.")
@output_option
def pause_command(outbox: Path, lane: str, reason: str | None, output: str) -> None:
    """Stop delivering LANE until `resume`: its pending messages stay, none is sent.

    `status` lists it with the code PausedByOperator and the reason. A message of the lane in
    flight when the pause lands is still recorded (delivered or failed); the lane stays paused.
    A lane with no pending messages cannot be paused (exit status 1). With --output json:
    {"lane", "already_paused", "pause"}, the pause as `status` lists it (an earlier one when the
    lane was already paused; null if its last message was delivered meanwhile).
    """
    with opened_store(outbox) as store:
        paused = store.pause(lane, time.time(), reason)
        if output == "json":
            pauses = [entry for entry in store.paused_lanes() if entry.lane == lane]
            pause = pauses[0] if pauses else None
            print_json({"lane": lane, "already_paused": not paused, "pause": pause})
            return
    if paused:
        click.echo(f"paused lane {lane}")
    else:
        click.echo(f"lane {lane} was already paused")


@click.command("resume")
@outbox_option
@click.argument("lane", required=False)
@click.option("--all", "resume_all", is_flag=True, help="Resume every paused lane.")
def resume_command(outbox: Path, lane: str | None, resume_all: bool) -> None:
    """Retry the head of a paused LANE (or of every paused lane with --all), its attempts reset.

    A running `ordered-sender run` picks the lane up within a second.
    """
    if (lane is None) == (not resume_all):
        raise click.UsageError("give either a LANE or --all")
    with opened_store(outbox) as store:
        paused = [entry.lane for entry in store.paused_lanes()]
        lanes = paused if resume_all else [str(lane)]
        for name in lanes:
            if not store.resume(name, time.time()):
                raise click.ClickException(
                    f"lane {name!r} is not paused; paused lanes: {', '.join(paused) or 'none'}"
                )
            click.echo(f"resumed lane {name}")
    if not lanes:
        click.echo("no lane was paused")


@click.group("dead-letters")
def dead_letters_group() -> None:
    """Messages that failed for good under `--on-permanent-failure dead_letter`."""


@dead_letters_group.command("list")
@outbox_option
@click.option("--lane", help="Only this lane's dead letters.")
@output_option
def list_dead_letters(outbox: Path, lane: str | None, output: str) -> None:
    """List dead letters, oldest put first (with --output json: a JSON list, times in seconds
    since the Unix epoch; payloads are never shown)."""
    with opened_store(outbox, read_only=True) as store:
        letters = store.dead_letters(lane)
    if output == "json":
        print_json(letters)
        return
    if not letters:
        click.echo("no dead letters")
        return
    print_dead_letters(stdout_console(), letters)


def print_dead_letters(console: Console, letters: list[DeadLetter]) -> None:
    table = Table(title="Dead letters (ordered-sender dead-letters redrive|drop --outbox PATH ID)")
    for column in ("lane", "message", "input", "error", "attempts", "failed at (UTC)"):
        table.add_column(column, overflow="fold")
    for letter in letters:
        table.add_row(
            letter.lane,
            letter.message_id,
            letter.input_name,
            f"{letter.error_code}: {letter.error_text}",
            str(letter.attempts),
            when(letter.failed_at),
        )
    console.print(table)


@dead_letters_group.command("redrive")
@outbox_option
@click.argument("message_ids", nargs=-1, required=True)
def redrive_dead_letters(outbox: Path, message_ids: tuple[str, ...]) -> None:
    """Put dead letters back at the head of their lanes, same message ids, fresh attempts."""
    with opened_store(outbox) as store:
        for message_id in message_ids:
            lane = store.redrive(message_id, time.time())
            if lane is None:
                raise click.ClickException(f"{message_id!r} is not a dead letter of {outbox}")
            click.echo(f"redriven {message_id} to the head of lane {lane}")


@dead_letters_group.command("drop")
@outbox_option
@click.argument("message_ids", nargs=-1, required=True)
def drop_dead_letters(outbox: Path, message_ids: tuple[str, ...]) -> None:
    """Forget dead letters for good."""
    with opened_store(outbox) as store:
        for message_id in message_ids:
            if not store.drop(message_id, time.time()):
                raise click.ClickException(f"{message_id!r} is not a dead letter of {outbox}")
            click.echo(f"dropped {message_id}")
