"""``ordered-sender run``: deliver an existing outbox until SIGTERM or Ctrl-C."""

from __future__ import annotations

from pathlib import Path

import click

from ordered_sender.cli.options import (
    endpoint_option,
    open_sender,
    opened_store,
    outbox_option,
    policy_option,
    region_option,
    transport_option,
)
from ordered_sender.cli.progress import counted, interrupt_as_event
from ordered_sender.config import SenderConfig

RUN_CHECK_SECONDS = 0.5
"""How often ``run`` looks whether its sender stopped for good."""


@click.command("run")
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
