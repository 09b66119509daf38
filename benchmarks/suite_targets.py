"""Issue 7's targets, judged from one run of the suite: each line says the target, the figure
this run measured, and met or missed. Only rows of the same run are compared.

The 20 ms bound is min(lanes / RTT, concurrency x 10 / RTT) with RTT the round trip the naive
loop measured at that latency (its p50, call start to response): the endpoint's real round trip
on this machine, the added latency included.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from suite_verify import RunResult


def _find(
    results: list[RunResult], kind: str, scenario: str, lanes: int, latency_ms: int
) -> list[RunResult]:
    return [
        r
        for r in results
        if r.kind == kind
        and r.scenario == scenario
        and r.lanes == lanes
        and r.latency_ms == latency_ms
    ]


def _best(rows: list[RunResult], key: Callable[[RunResult], float]) -> RunResult | None:
    return max(rows, key=key) if rows else None


def _verdict(value: float, target: float) -> str:
    return "met" if value >= target else "MISSED"


def _ratio_line(
    results: list[RunResult],
    what: str,
    scenario: str,
    lanes: int,
    latency_ms: int,
    reference: str,
    target: float,
    bound: Callable[[RunResult], str] | None = None,
) -> Iterator[str]:
    """``bound``: what else bounds the best row, said before the verdict."""
    base = _find(results, reference, "backlog", lanes, latency_ms)
    best = _best(_find(results, "ordered", scenario, lanes, latency_ms), _rate)
    if not base or best is None:
        return
    value = best.messages_per_second / base[0].messages_per_second
    yield (
        f"{what}: {value:.2f}x {reference} ({best.contender}, "
        f"{best.messages_per_second:,.0f} against {base[0].messages_per_second:,.0f} "
        f"messages/s){'' if bound is None else bound(best)}; target >= {target}x: "
        f"{_verdict(value, target)}"
    )


def _producer_bound(disk: dict[str, Any]) -> Callable[[RunResult], str]:
    """For a streaming row: one thread put() it, and one thread's puts are bounded by the disk."""
    alone = float(disk["outbox_put"]["puts_per_second"])
    commits = float(disk["sqlite_full_commits_per_second"])

    def bound(row: RunResult) -> str:
        put = "" if row.put_per_second is None else f"{row.put_per_second:,.0f} put()/s; "
        return (
            f"; producer-bound: {put}one thread's put() alone reaches {alone:,.0f}/s on this "
            f"disk ({commits:,.0f} FULL commits/s), each waiting for its own fsync"
        )

    return bound


def _rate(row: RunResult) -> float:
    return row.messages_per_second


def target_lines(results: list[RunResult], concurrency: int, disk: dict[str, Any]) -> list[str]:
    """One line per target this run has the rows (or the disk probe) for."""
    disk_commits = float(disk["sqlite_full_commits_per_second"])
    lines: list[str] = []
    lines += _ratio_line(results, "1 lane, streaming (0 ms)", "stream-thread", 1, 0, "naive", 0.9)
    lines += _ratio_line(results, "1 lane, backlog (0 ms)", "backlog", 1, 0, "naive", 0.9)
    for lanes in (20,):
        lines += _ratio_line(
            results, f"{lanes} lanes, backlog (0 ms)", "backlog", lanes, 0, "unordered", 0.9
        )
        lines += _ratio_line(
            results, f"{lanes} lanes, backlog (0 ms)", "backlog", lanes, 0, "naive", 5.0
        )
        lines += _ratio_line(
            results,
            f"{lanes} lanes, streaming in one process (0 ms)",
            "stream-thread",
            lanes,
            0,
            "unordered",
            0.25,
            _producer_bound(disk),
        )
        lines += _ratio_line(
            results,
            f"{lanes} lanes, streaming from another process (0 ms)",
            "stream-process",
            lanes,
            0,
            "unordered",
            0.25,
            _producer_bound(disk),
        )
    for lanes in (20, 1000):
        naive = _find(results, "naive", "backlog", lanes, 20)
        best = _best(_find(results, "ordered", "backlog", lanes, 20), _rate)
        if not naive or best is None:
            continue
        rtt = naive[0].latency_p50_ms / 1000
        bound = min(lanes / rtt, concurrency * 10 / rtt)
        value = best.messages_per_second / bound
        lines.append(
            f"{lanes} lanes at 20 ms: {value:.2f}x the bound min(lanes, concurrency x 10) / RTT "
            f"= {bound:,.0f} messages/s (RTT {rtt * 1000:.1f} ms, naive p50; "
            f"{best.contender} {best.messages_per_second:,.0f}); target >= 0.85x: "
            f"{_verdict(value, 0.85)}"
        )
    streams = [r for r in results if r.scenario == "stream-thread" and r.put_per_second]
    one_thread = _best(streams, lambda r: r.put_per_second or 0.0)
    if one_thread is not None and one_thread.put_per_second is not None:
        lines.append(
            f"put() from one thread while the same process delivers: "
            f"{one_thread.put_per_second:,.0f}/s at best ({one_thread.contender}, "
            f"{one_thread.lanes} lanes, {one_thread.latency_ms} ms); each put waits for its own "
            f"fsync, so one thread is bounded by the disk's {disk_commits:,.0f} commits/s; "
            f"target >= 5,000/s: {_verdict(one_thread.put_per_second, 5000)}"
        )
    threaded = disk.get("outbox_put_8_threads")
    if threaded is not None:
        rate = float(threaded["puts_per_second"])
        unsynced = disk.get("outbox_put_8_threads_no_fsync")
        without_disk = (
            ""
            if unsynced is None  # a report from before the probe
            else f"; with synchronous=OFF (no fsync at all) the same threads reach "
            f"{float(unsynced['puts_per_second']):,.0f}/s, the interpreter's bound"
        )
        lines.append(
            f"put() from {threaded['threads']} threads at once (no delivery): {rate:,.0f}/s"
            f"{without_disk}; target >= 10,000/s: {_verdict(rate, 10000)}"
        )
    return lines
