"""The suite's judgement of issue 7's targets, from rows of one run."""

from __future__ import annotations

import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

from suite import median_runs  # noqa: E402
from suite_targets import target_lines  # noqa: E402
from suite_verify import RunResult, Verification  # noqa: E402


def row(
    kind: str,
    scenario: str,
    lanes: int,
    latency_ms: int,
    messages_per_second: float,
    *,
    p50_ms: float = 1.0,
    put_per_second: float | None = None,
) -> RunResult:
    contender = "ordered_sender[http]" if kind == "ordered" else kind
    return RunResult(
        contender=contender,
        kind=kind,
        scenario=scenario,
        lanes=lanes,
        latency_ms=latency_ms,
        messages=int(messages_per_second * 10),
        seconds=10.0,
        requests=1,
        latency_p50_ms=p50_ms,
        latency_p99_ms=p50_ms,
        latency_measure="call start to response",
        cpu_seconds_per_1000=1.0,
        peak_rss_mb=50.0,
        put_per_second=put_per_second,
        producer_cpu_seconds_per_1000=None,
        verification=Verification(expected=1, processed=1, duplicates=0, reordered=0, unexpected=0),
    )


DISK = {
    "sqlite_full_commits_per_second": 2600.0,
    "outbox_put": {"puts_per_second": 1500.0, "cpu_seconds_per_1000": 0.3},
    "outbox_put_8_threads": {"threads": 8, "puts_per_second": 12000.0},
}


def test_each_target_is_judged_against_the_rows_of_the_same_run() -> None:
    results = [
        row("naive", "backlog", 1, 0, 300),
        row("ordered", "stream-thread", 1, 0, 280, put_per_second=900),  # 0.93x: met
        row("ordered", "backlog", 1, 0, 250),  # 0.83x: missed
        row("unordered", "backlog", 20, 0, 3000),
        row("naive", "backlog", 20, 0, 300),
        row("ordered", "backlog", 20, 0, 2800),  # 0.93x unordered, 9.3x naive
        row("naive", "backlog", 1000, 20, 40, p50_ms=25.0),
        row("ordered", "backlog", 1000, 20, 1300),  # bound 4 x 10 / 0.025 = 1,600: 0.81x
    ]
    lines = target_lines(results, concurrency=4, disk=DISK)
    text = "\n".join(lines)
    assert "1 lane, streaming (0 ms): 0.93x naive" in text
    assert next(line for line in lines if line.startswith("1 lane, streaming")).endswith("met")
    assert next(line for line in lines if line.startswith("1 lane, backlog")).endswith("MISSED")
    twenty = [line for line in lines if line.startswith("20 lanes, backlog")]
    assert [line.rsplit(": ", 1)[1] for line in twenty] == ["met", "met"]
    assert "0.93x unordered" in twenty[0] and "9.33x naive" in twenty[1]
    at_20_ms = next(line for line in lines if line.startswith("1000 lanes at 20 ms"))
    assert "= 1,600 messages/s" in at_20_ms and at_20_ms.endswith("MISSED")
    assert any("900/s" in line and line.endswith("MISSED") for line in lines)  # one thread
    assert any("12,000/s" in line and line.endswith("met") for line in lines)  # eight threads


def test_targets_without_their_rows_are_left_out() -> None:
    lines = target_lines([row("naive", "backlog", 3, 0, 300)], concurrency=4, disk=DISK)
    assert lines == [
        "put() from 8 threads at once (no delivery): 12,000/s; target >= 10,000/s: met"
    ]


def test_the_threaded_put_target_says_what_the_same_threads_reach_without_the_disk() -> None:
    disk = {
        **DISK,
        "outbox_put_8_threads": {"threads": 8, "puts_per_second": 5200.0},
        "outbox_put_8_threads_no_fsync": {"threads": 8, "puts_per_second": 6900.0},
    }
    (line,) = target_lines([], concurrency=4, disk=disk)
    assert line == (
        "put() from 8 threads at once (no delivery): 5,200/s; with synchronous=OFF (no fsync at "
        "all) the same threads reach 6,900/s, the interpreter's bound; target >= 10,000/s: MISSED"
    )


def test_the_streaming_targets_say_that_one_producing_thread_is_bounded_by_the_disk() -> None:
    results = [
        row("unordered", "backlog", 20, 0, 3000),
        row("ordered", "stream-thread", 20, 0, 700, put_per_second=700),
        row("ordered", "stream-process", 20, 0, 1000, put_per_second=1000),
    ]
    lines = target_lines(results, concurrency=4, disk={**DISK, "outbox_put_8_threads": None})
    bound = "one thread's put() alone reaches 1,500/s on this disk (2,600 FULL commits/s)"
    assert lines[0].startswith("20 lanes, streaming in one process (0 ms): 0.23x unordered")
    assert "producer-bound: 700 put()/s; " + bound in lines[0]
    assert lines[0].endswith("target >= 0.25x: MISSED")
    assert lines[1].startswith("20 lanes, streaming from another process (0 ms): 0.33x")
    assert "producer-bound: 1,000 put()/s; " + bound in lines[1]
    assert lines[1].endswith("target >= 0.25x: met")


def test_a_repeated_suite_reports_each_contender_s_median_run_whole() -> None:
    runs = [row("ordered", "backlog", 20, 0, rate) for rate in (900, 1200, 1000)]
    runs += [row("naive", "backlog", 20, 0, rate) for rate in (310, 300)]
    runs += [row("ordered", "backlog", 1, 0, 500)]

    medians = median_runs(runs)

    assert [(m.kind, m.lanes, m.messages_per_second) for m in medians] == [
        ("ordered", 20, 1000),
        ("naive", 20, 300),
        ("ordered", 1, 500),
    ]
    assert medians[0] is runs[2]  # the run itself, every figure of its row from it
