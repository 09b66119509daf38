"""The benchmark suite (benchmarks/suite.py) as a user runs it, on a tiny configuration: it
measures every contender and scenario, and what it reports was checked against the endpoint."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SUITE = Path(__file__).resolve().parent.parent / "benchmarks" / "suite.py"
SCENARIOS = ("backlog", "stream-thread", "stream-process")


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    outdir = tmp_path_factory.mktemp("suite")
    finished = subprocess.run(
        [
            sys.executable,
            str(SUITE),
            "--quick",
            "--outdir",
            str(outdir),
            "--name",
            "tiny",
            "--lanes",
            "3",
            "--latencies",
            "0",
            "--transports",
            "boto3",
            "--seconds",
            "0.05",
            "--bounds-seconds",
            "0.3",
            "--capacity-threads",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    document: dict[str, Any] = json.loads((outdir / "tiny.json").read_text())
    document["outdir"] = outdir
    document["stdout"] = finished.stdout
    return document


def test_every_contender_and_scenario_is_measured(report: dict[str, Any]) -> None:
    runs = {(r["kind"], r["scenario"]) for r in report["results"]}
    expected = {("naive", "backlog"), ("unordered", "backlog")}
    expected |= {("ordered", scenario) for scenario in SCENARIOS}
    assert runs == expected
    assert report["errors"] == []


def test_every_message_arrives_once_and_lane_order_holds_for_naive_and_ordered(
    report: dict[str, Any],
) -> None:
    for run in report["results"]:
        check = run["verification"]
        assert check["expected"] == run["messages"] > 0
        assert check["processed"] == check["expected"], run
        assert check["duplicates"] == check["unexpected"] == 0, run
        if run["kind"] != "unordered":
            assert check["reordered"] == 0, run
        assert run["correct"], run


def test_each_run_reports_rates_latency_cpu_and_memory(report: dict[str, Any]) -> None:
    for run in report["results"]:
        assert run["messages_per_second"] > 0
        assert run["requests"] >= run["messages"] / 10
        assert 0 <= run["latency_p50_ms"] <= run["latency_p99_ms"]
        assert run["cpu_seconds_per_1000"] > 0
        assert run["peak_rss_mb"] > 10
    streams = [r for r in report["results"] if r["scenario"].startswith("stream")]
    assert all(r["put_per_second"] > 0 for r in streams)


def test_the_bounds_are_measured_beside_the_results(report: dict[str, Any]) -> None:
    capacity = report["endpoint_capacity"]["0"]
    assert capacity["requests_per_second"] > 0
    assert capacity["failures"] == 0
    assert report["disk"]["sqlite_full_commits_per_second"] > 0
    assert report["disk"]["outbox_put"]["puts_per_second"] > 0
    assert report["disk"]["outbox_put_8_threads"]["puts_per_second"] > 0
    assert report["disk"]["outbox_put_8_threads_no_fsync"]["puts_per_second"] > 0


def test_the_table_goes_to_stdout_and_markdown_and_the_plot_to_a_png(
    report: dict[str, Any],
) -> None:
    assert "ordered_sender[boto3]" in report["stdout"]
    markdown = (report["outdir"] / "tiny.md").read_text()
    assert "| lanes | contender |" in markdown
    assert "endpoint capacity" in markdown
    plot = report["outdir"] / "tiny.png"
    if importlib.util.find_spec("matplotlib") is None:
        assert "matplotlib is not installed" in report["stdout"]
    else:
        assert plot.read_bytes().startswith(b"\x89PNG")
