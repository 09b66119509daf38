"""What the demo prints of its first part: the table per lane, the faults survived, the line
that judges it."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ordered_sender.cli.demo.verdict import EndpointRecord, LaneReport, PlannedMessage, Verdict
from ordered_sender.cli.progress import counted


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
        console.print(
            Text(f"FAILED: lanes not complete and in order: {', '.join(failed)}", style="red")
        )
        return Verdict.FAILED
    console.print(
        Text(
            f"OK: {'the' if len(reports) == 1 else 'all'} {counted(len(reports), 'lane')} "
            "arrived complete and in order, "
            "without duplicates",
            style="green",
        )
    )
    return Verdict.RIGHT


def say_what_arrived_in_order(console: Console, reports: Sequence[LaneReport]) -> Verdict:
    """Stopped early, lanes are incomplete by the user's choice: what arrived is judged."""
    wrong = [report.lane.name for report in reports if not report.in_order or report.duplicates]
    if wrong:
        console.print(Text(f"FAILED: out of order or duplicated: {', '.join(wrong)}", style="red"))
        return Verdict.FAILED
    console.print(
        Text("stopped early: what arrived, arrived in order and without duplicates", style="yellow")
    )
    return Verdict.SKIPPED


def _yes_no(value: bool) -> Text:
    return Text("yes") if value else Text("no", style="red")
