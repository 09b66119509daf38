"""``ordered-sender run``: deliver an existing outbox until SIGTERM or Ctrl-C."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ordered_sender.cli.options import (
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
    ProgressDisplay,
    counted,
    interrupt_as_event,
    state_line,
    waiting_reason,
)
from ordered_sender.config import SenderConfig

if TYPE_CHECKING:
    from ordered_sender.metrics import MetricsServer

RUN_CHECK_SECONDS = 0.5
"""How often ``run`` looks whether its sender stopped for good, and refreshes its display."""


@click.command("run")
@outbox_option
@endpoint_option()
@region_option
@profile_option
@transport_option
@policy_option
@progress_option
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    help="Serve Prometheus metrics at /metrics on this port while it runs (0: any free port, "
    "printed). Needs `pip install 'ordered-sender[metrics]'`.",
)
@click.option(
    "--metrics-host",
    default="0.0.0.0",
    show_default=True,
    help="Address the metrics server listens on (127.0.0.1: this machine only).",
)
def run_command(
    outbox: Path,
    endpoint_url: str | None,
    region: str | None,
    transport: str,
    on_permanent_failure: str,
    progress_every: float,
    metrics_port: int | None,
    metrics_host: str,
) -> None:
    """Deliver the outbox until SIGTERM or Ctrl-C, then stop cleanly.

    Requests in flight finish; everything else stays in the outbox for the next run, and the last
    line says how many messages were kept and how many this run delivered. The outbox must exist
    (`send` or an `Outbox` creates it). On a terminal a live line shows what was delivered and why
    the rest waits; elsewhere (a pipe, a log file) the same as a line every --progress-every
    seconds while it changes.

    Exit status: 0 after a clean stop on SIGTERM (how a service manager stops it), 130 after
    Ctrl-C (SIGINT), 1 if the outbox file is deleted or replaced while it runs.
    """
    config = SenderConfig(on_permanent_failure=on_permanent_failure)  # type: ignore[arg-type]
    console = stdout_console()
    metrics = None if metrics_port is None else serve_metrics(metrics_host, metrics_port)
    with interrupt_as_event() as stop:
        sender = open_sender(
            outbox, endpoint_url, region, config, deliver=True, create=False, transport=transport
        )
        if metrics is not None:
            metrics.watch(sender.stats)
            console.print(
                f"metrics at http://{metrics_host}:{metrics.port}/metrics", highlight=False
            )
        before = sender.counts()
        console.print(
            f"delivering {outbox}: {counted(before.pending, 'message')} pending in "
            f"{counted(before.lanes, 'lane')}; stop with Ctrl-C or SIGTERM",
            highlight=False,
        )
        started = time.monotonic()
        with ProgressDisplay(console, total=None, line_seconds=progress_every) as display:
            while not stop.wait(RUN_CHECK_SECONDS) and sender.failure is None:
                stats = sender.stats()
                reason = waiting_reason(sender.store) if stats.pending else None
                display.show(state_line(stats, time.monotonic() - started, reason))
        failure = sender.failure
        console.print("stopping: finishing requests in flight")
        if metrics is not None:
            metrics.close()
        sender.close()
        sender.wait_closed()
        delivered = sender.stats().delivered  # this run's, the requests in flight included
    if failure is not None:
        raise click.ClickException(failure)
    # Counted after close, so the outcomes of the requests that were in flight are included.
    with opened_store(outbox, read_only=True) as store:
        after = store.counts()
    console.print(
        f"stopped: {counted(after.pending, 'message')} kept in {outbox} "
        f"({counted(after.paused_lanes, 'paused lane')}, "
        f"{counted(after.dead_letters, 'dead letter')}); {counted(delivered, 'message')} delivered",
        highlight=False,
    )
    if stop.signal_number == signal.SIGINT:
        sys.exit(stop.exit_status)


def serve_metrics(host: str, port: int) -> MetricsServer:
    """Listen before the outbox is opened, so that a port in use fails before anything starts."""
    try:
        from ordered_sender.metrics import MetricsServer
    except ImportError as error:
        raise click.UsageError(f"--metrics-port: {error}") from None
    try:
        return MetricsServer(port, host)
    except OSError as error:
        raise click.UsageError(
            f"--metrics-port: cannot listen on {host}:{port}: {error.strerror or error}"
        ) from None
