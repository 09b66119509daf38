"""The suite's outputs: a rich table on stdout, and JSON, Markdown and a PNG plot in the outdir.

Ratios compare rows of one run only: ``x naive`` and ``x unordered`` divide a row's messages/s by
the naive and unordered loops' at the same lane count and endpoint latency.
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from suite_targets import target_lines
from suite_verify import RunResult, Verification

HEADERS = (
    "lanes",
    "contender",
    "scenario",
    "messages/s",
    "requests/s",
    "msgs/request",
    "put/s",
    "p50 ms",
    "p99 ms",
    "CPU s/1k msgs",
    "peak RSS MB",
    "x naive",
    "x unordered",
    "checked",
)
LEFT_ALIGNED = {"contender", "scenario", "checked"}


@dataclass(frozen=True, slots=True)
class Report:
    command: str
    started: float
    seconds: float
    concurrency: int
    capacity_threads: int
    transports: list[str]
    capacity: dict[int, dict[str, Any]]
    """Endpoint capacity by added latency (ms)."""
    disk: dict[str, Any]
    results: list[RunResult]
    errors: list[str]
    machine: dict[str, Any] | None = None
    """Where it ran (``machine()``), kept when a report is rendered again from its JSON."""


def machine() -> dict[str, Any]:
    def git(*arguments: str) -> str:
        finished = subprocess.run(
            ["git", *arguments],
            capture_output=True,
            text=True,
            check=False,
            cwd=Path(__file__).parent,
        )
        return finished.stdout.strip()

    changed = git("status", "--porcelain", "--", "../ordered_sender").splitlines()
    return {
        "python": platform.python_version(),
        "cpus": len(os.sched_getaffinity(0)),
        "platform": platform.platform(),
        "commit": git("rev-parse", "--short", "HEAD"),
        "library_files_uncommitted": len(changed),
    }


def baseline(results: list[RunResult], kind: str, row: RunResult) -> float | None:
    for result in results:
        if (
            result.kind == kind
            and result.lanes == row.lanes
            and result.latency_ms == row.latency_ms
        ):
            return result.messages_per_second
    return None


def ratio(row: RunResult, reference: float | None) -> str:
    return "" if reference is None else f"{row.messages_per_second / reference:.2f}x"


def checked(row: RunResult) -> str:
    check = row.verification
    problems = [
        f"{count} {what}"
        for count, what in (
            (check.missing, "missing"),
            (check.duplicates, "duplicated"),
            (check.unexpected, "unexpected"),
        )
        if count
    ]
    if check.reordered:
        allowed = "" if row.order_required else " (no order promised)"
        problems.append(f"{check.reordered} reordered{allowed}")
    verdict = "ok" if row.correct else "BROKEN"
    return verdict if not problems else f"{verdict}: {', '.join(problems)}"


def number(value: float | None, digits: int = 0) -> str:
    if value is None or math.isnan(value):
        return ""
    return f"{value:,.{digits}f}"


def cells(row: RunResult, results: list[RunResult]) -> list[str]:
    return [
        str(row.lanes),
        row.contender,
        row.scenario,
        number(row.messages_per_second),
        number(row.requests_per_second),
        number(row.messages / row.requests if row.requests else None, 1),
        number(row.put_per_second),
        number(row.latency_p50_ms, 1),
        number(row.latency_p99_ms, 1),
        number(row.cpu_seconds_per_1000, 3),
        number(row.peak_rss_mb, 0),
        ratio(row, baseline(results, "naive", row)),
        ratio(row, baseline(results, "unordered", row)),
        checked(row),
    ]


def by_latency(report: Report) -> Iterator[tuple[int, list[RunResult]]]:
    for latency_ms in sorted({r.latency_ms for r in report.results}):
        rows = [r for r in report.results if r.latency_ms == latency_ms]
        yield latency_ms, sorted(rows, key=lambda r: r.lanes)


def capacity_line(report: Report, latency_ms: int) -> str:
    capacity = report.capacity.get(latency_ms)
    if capacity is None:
        return ""
    return (
        f"endpoint capacity at {latency_ms} ms (raw HTTP, {capacity['threads']} threads, "
        "10 messages per request): "
        f"{capacity['requests_per_second']:,.0f} requests/s, "
        f"{capacity['messages_per_second']:,.0f} messages/s"
    )


def threaded_puts(disk: dict[str, Any]) -> str:
    threaded = disk.get("outbox_put_8_threads")
    if threaded is None:  # a report from before the probe
        return ""
    line = (
        f"; from {threaded['threads']} threads at once {threaded['puts_per_second']:,.0f}/s "
        f"({threaded['cpu_seconds_per_1000']:.3f} CPU s per 1,000)"
    )
    unsynced = disk.get("outbox_put_8_threads_no_fsync")
    if unsynced is not None:
        line += (
            f", {unsynced['puts_per_second']:,.0f}/s with synchronous=OFF "
            f"({unsynced['cpu_seconds_per_1000']:.3f} CPU s per 1,000)"
        )
    return line


def bounds_lines(report: Report) -> list[str]:
    commits = report.disk["sqlite_full_commits_per_second"]
    puts = report.disk["outbox_put"]
    return [
        f"disk: {commits:,.0f} one-row SQLite commits/s (WAL, synchronous=FULL); "
        f"Outbox.put() alone {puts['puts_per_second']:,.0f}/s "
        f"({puts['cpu_seconds_per_1000']:.3f} CPU s per 1,000)" + threaded_puts(report.disk),
        *(capacity_line(report, latency) for latency in sorted(report.capacity)),
    ]


def targets(report: Report) -> list[str]:
    return target_lines(report.results, report.concurrency, report.disk)


def print_tables(report: Report) -> None:
    console = Console(width=220)
    for latency_ms, rows in by_latency(report):
        table = Table(
            title=f"endpoint latency {latency_ms} ms", caption=capacity_line(report, latency_ms)
        )
        for header in HEADERS:
            table.add_column(header, justify="left" if header in LEFT_ALIGNED else "right")
        previous_lanes = None
        for row in rows:
            if previous_lanes is not None and row.lanes != previous_lanes:
                table.add_section()
            previous_lanes = row.lanes
            table.add_row(*(escape(cell) for cell in cells(row, report.results)))
        console.print(table)
    for line in bounds_lines(report):
        console.print(line)
    for line in targets(report):
        console.print(f"target: {escape(line)}")
    for error in report.errors:
        console.print(f"[red]FAILED[/red] {error}")


def markdown(report: Report, details: dict[str, Any]) -> str:
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(report.started))
    lines = [
        "# ordered_sender benchmark suite",
        "",
        f"`{report.command}`: {when}, {details['cpus']} CPUs, Python {details['python']}, "
        f"commit {details['commit']} ({details['library_files_uncommitted']} library files "
        f"changed in the working tree), {report.seconds:.0f} s in all. Requests in flight: "
        f"{report.concurrency} (naive: 1). p50/p99 time, for {latency_meanings(report)}.",
        "",
        *(f"- {line}" for line in bounds_lines(report)),
    ]
    for latency_ms, rows in by_latency(report):
        lines += ["", f"## Endpoint latency {latency_ms} ms", ""]
        lines.append("| " + " | ".join(HEADERS) + " |")
        lines.append("|" + "|".join("---" if h in LEFT_ALIGNED else "---:" for h in HEADERS) + "|")
        lines += ["| " + " | ".join(cells(row, report.results)) + " |" for row in rows]
    lines += ["", "## Targets (issue 7)", "", *(f"- {line}" for line in targets(report))]
    if report.errors:
        lines += ["", "## Failed runs", "", *(f"- {error}" for error in report.errors)]
    return "\n".join(lines) + "\n"


def latency_meanings(report: Report) -> str:
    measures = {f"{r.kind} {r.scenario}": r.latency_measure for r in report.results}
    return "; ".join(f"{where}: {measure}" for where, measure in sorted(measures.items()))


SCENARIO_STYLES = {
    "reference": ("-", "s"),
    "backlog": ("-", "o"),
    "stream-thread": ("--", "^"),
    "stream-process": (":", "v"),
}
"""Line style and marker per scenario; naive and unordered are the references."""


def contender_colours(results: list[RunResult]) -> dict[str, str]:
    """One colour per contender (a transport of ordered_sender is a contender of its own)."""
    palette = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"]
    names = list(dict.fromkeys(r.contender for r in results))
    return {name: palette[index % len(palette)] for index, name in enumerate(names)}


def plot(report: Report, path: Path) -> str:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as pyplot
    except ImportError:
        return "no plot: matplotlib is not installed (pip install -e '.[bench]')"
    groups = list(by_latency(report))
    if not groups:
        return "no plot: no results"
    figure, axes = pyplot.subplots(
        1, len(groups), figsize=(6.5 * len(groups), 5.2), squeeze=False, sharey=True
    )
    colours = contender_colours(report.results)
    for axis, (latency_ms, rows) in zip(axes[0], groups, strict=True):
        series: dict[str, list[RunResult]] = {}
        for row in rows:
            name = row.contender if row.kind != "ordered" else f"{row.contender} {row.scenario}"
            series.setdefault(name, []).append(row)
        for name, points in series.items():
            scenario = points[0].scenario if points[0].kind == "ordered" else "reference"
            line_style, marker = SCENARIO_STYLES[scenario]
            axis.plot(
                [p.lanes for p in points],
                [p.messages_per_second for p in points],
                linestyle=line_style,
                marker=marker,
                color=colours[points[0].contender],
                label=name,
            )
        capacity = report.capacity.get(latency_ms)
        if capacity:
            axis.axhline(
                capacity["messages_per_second"],
                color="grey",
                linestyle=(0, (1, 3)),
                label="endpoint capacity (raw HTTP)",
            )
        lanes = sorted({row.lanes for row in rows})
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xticks(lanes, [f"{count:,}" for count in lanes])
        axis.set_xlabel("lanes")
        axis.set_title(f"endpoint latency {latency_ms} ms")
        axis.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("messages/s (log)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=3, fontsize="small", frameon=False)
    figure.suptitle("Delivery rate against lane count (same endpoint, same machine, one run)")
    figure.tight_layout(rect=(0, 0.12, 1, 1))
    figure.savefig(path, dpi=110)
    pyplot.close(figure)
    return f"plot: {path}"


def load_report(path: Path) -> Report:
    """A report back from the JSON that ``write_report`` wrote, to render it again."""
    document = json.loads(path.read_text())
    rows = []
    for entry in document["results"]:
        fields = {k: v for k, v in entry.items() if k in RunResult.__dataclass_fields__}
        fields["verification"] = Verification(**entry["verification"])
        rows.append(RunResult(**fields))
    return Report(
        command=document["command"],
        started=document["started"],
        seconds=document["seconds"],
        concurrency=document["concurrency"],
        capacity_threads=document.get("capacity_threads", 16),
        transports=document["transports"],
        capacity={int(k): v for k, v in document["endpoint_capacity"].items()},
        disk=document["disk"],
        results=rows,
        errors=document["errors"],
        machine=document["machine"],
    )


def write_report(report: Report, outdir: Path, name: str) -> None:
    outdir.mkdir(parents=True, exist_ok=True)
    details = report.machine or machine()
    print_tables(report)
    document = {
        "command": report.command,
        "started": report.started,
        "seconds": report.seconds,
        "machine": details,
        "concurrency": report.concurrency,
        "capacity_threads": report.capacity_threads,
        "transports": report.transports,
        "endpoint_capacity": {str(k): v for k, v in report.capacity.items()},
        "disk": report.disk,
        "results": [
            {
                **asdict(row),
                "messages_per_second": row.messages_per_second,
                "requests_per_second": row.requests_per_second,
                "correct": row.correct,
            }
            for row in report.results
        ],
        "errors": report.errors,
    }
    (outdir / f"{name}.json").write_text(json.dumps(document, indent=2) + "\n")
    (outdir / f"{name}.md").write_text(markdown(report, details))
    print(f"report: {outdir / f'{name}.json'}, {outdir / f'{name}.md'}")
    print(plot(report, outdir / f"{name}.png"))
