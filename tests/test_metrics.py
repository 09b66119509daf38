"""Prometheus metrics: a sender's stats scraped over HTTP, in process and from `ordered-sender run
--metrics-port` in a subprocess, through boto3 and the emulator."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
import structlog
import tenacity
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from ordered_sender import OrderedSender, Outbox, SenderConfig, SenderStats
from ordered_sender.emulator import Emulator, Faults, TargetedFault
from ordered_sender.metrics import MetricsServer, SenderCollector
from ordered_sender.testing import ManualClock

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample of a scrape, by name and sorted labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=10) as response:
        return parse(response.read().decode())


@pytest.fixture
def sender(outbox: Path, emulator: Emulator) -> Iterator[OrderedSender]:
    emulator.create_input("A")
    config = SenderConfig(on_permanent_failure="dead_letter", retry_wait=tenacity.wait_fixed(0))
    with OrderedSender(
        outbox,
        client=emulator.client("iotevents-data"),
        config=config,
        clock=ManualClock(),
        autostart=False,
    ) as sender:
        yield sender


def test_a_scrape_over_http_reads_counters_gauges_and_latency(
    sender: OrderedSender, emulator: Emulator
) -> None:
    emulator.set_faults(
        Faults(
            latency_ms=(20, 20),
            targeted=(
                TargetedFault("ThrottlingException", message_id="a-1", count=2),
                TargetedFault("InvalidRequestException", message_id="a-2", count=1),
            ),
        )
    )
    sender.put_many([("A", {"n": n}, f"a-{n}") for n in range(4)])
    sender.deliver_due()
    sender.put("Missing", {"n": 9})  # stays pending: nothing delivers it before the scrape

    with MetricsServer(0, "127.0.0.1", sender.stats) as server:
        samples = scrape(f"http://127.0.0.1:{server.port}/metrics")

    assert samples[("ordered_sender_messages_enqueued_total", ())] == 5
    assert samples[("ordered_sender_messages_delivered_total", ())] == 3
    assert samples[("ordered_sender_messages_dead_lettered_total", ())] == 1
    retries = ("ordered_sender_retries_total", (("error_code", "ThrottlingException"),))
    assert samples[retries] == 2
    assert samples[("ordered_sender_request_duration_seconds_count", ())] == len(
        emulator.requests()
    )
    assert samples[("ordered_sender_request_duration_seconds", (("quantile", "0.5"),))] >= 0.02
    assert ("ordered_sender_request_duration_seconds", (("quantile", "0.99"),)) in samples
    assert samples[("ordered_sender_pending_messages", ())] == 1
    assert samples[("ordered_sender_dead_letters", ())] == 1
    assert samples[("ordered_sender_lanes", ())] == 1
    assert samples[("ordered_sender_oldest_pending_age_seconds", ())] == 0


def test_each_scrape_takes_a_new_snapshot(sender: OrderedSender) -> None:
    registry = CollectorRegistry()
    registry.register(SenderCollector(sender.stats))
    before = parse(generate_latest(registry).decode())
    sender.put("A", {"n": 1})
    after = parse(generate_latest(registry).decode())
    assert before[("ordered_sender_pending_messages", ())] == 0
    assert after[("ordered_sender_pending_messages", ())] == 1
    assert after[("ordered_sender_messages_enqueued_total", ())] == 1
    # No request yet: a count and sum of 0, and no quantile that would claim a latency.
    assert after[("ordered_sender_request_duration_seconds_count", ())] == 0
    assert not any(name == "ordered_sender_request_duration_seconds" for name, _ in after)


def test_registering_reads_nothing_and_an_unreadable_outbox_scrapes_empty_with_a_warning(
    outbox: Path, emulator: Emulator
) -> None:
    sender = OrderedSender(outbox, client=emulator.client("iotevents-data"), autostart=False)
    snapshots: list[SenderStats] = []

    def stats() -> SenderStats:
        snapshots.append(sender.stats())
        return snapshots[-1]

    registry = CollectorRegistry(auto_describe=True)
    registry.register(SenderCollector(stats))
    assert snapshots == []  # the registry's check of names used describe(), not a snapshot
    sender.store.close()  # the outbox can no longer be read (a closed sender keeps its counters)
    with structlog.testing.capture_logs() as events:
        text = generate_latest(registry).decode()
    sender.close()
    assert "ordered_sender_" not in text
    (warning,) = [e for e in events if e["event"] == "metrics.unavailable"]
    assert warning["log_level"] == "warning"
    assert "closed" in warning["error"]


def test_a_port_in_use_is_refused_with_oserror() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError):
            MetricsServer(port, "127.0.0.1")


def test_without_prometheus_client_the_import_names_the_extra() -> None:
    blocked = "import sys; sys.modules['prometheus_client'] = None; import ordered_sender.metrics"
    result = subprocess.run([sys.executable, "-c", blocked], capture_output=True, text=True)
    assert result.returncode == 1
    assert "pip install 'ordered-sender[metrics]'" in result.stderr


COMMAND = str(Path(sys.executable).parent / "ordered-sender")


def cli_environment() -> dict[str, str]:
    return {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def first_line_with(stream: IO[str], text: str, timeout: float) -> str:
    """The first line of ``stream`` that contains ``text``, read in a thread so that a process
    that never prints it fails the test instead of hanging it."""
    found: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for line in stream:
            if text in line:
                found.put(line)
                return

    threading.Thread(target=read, daemon=True).start()
    return found.get(timeout=timeout)


def test_run_serves_the_metrics_of_its_sender_over_http(tmp_path: Path, emulator: Emulator) -> None:
    emulator.create_input("A")
    outbox = tmp_path / "outbox.db"
    with Outbox(outbox) as producer:
        producer.put_many([("A", {"n": n}) for n in range(5)])
        producer.put("Missing", {"n": 0})  # no such input: its lane pauses
    command = [
        COMMAND, "run", "--outbox", str(outbox), "--endpoint-url", emulator.endpoint_url,
        "--metrics-port", "0", "--metrics-host", "127.0.0.1",
    ]  # fmt: skip
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_environment()
    ) as run:
        try:
            assert run.stdout is not None
            url = first_line_with(run.stdout, "metrics at ", timeout=30).split()[-1]
            deadline = time.monotonic() + 30
            while True:  # until the sender has delivered what it can, as its metrics say
                samples = scrape(url)
                if (
                    samples[("ordered_sender_paused_lanes", ())] == 1
                    and samples[("ordered_sender_messages_delivered_total", ())] == 5
                ):
                    break
                assert time.monotonic() < deadline, f"never delivered: {samples}"
                time.sleep(0.05)
        finally:
            run.send_signal(signal.SIGTERM)
            _, stderr = run.communicate(timeout=30)
    assert run.returncode == 0, stderr
    assert samples[("ordered_sender_pending_messages", ())] == 1
    assert samples[("ordered_sender_lane_pauses_total", ())] == 1
    assert samples[("ordered_sender_request_duration_seconds_count", ())] >= 2
    assert "Traceback" not in stderr


def test_run_with_a_metrics_port_in_use_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [COMMAND, "run", "--outbox", str(tmp_path / "never-opened.db"),
             "--metrics-port", str(port), "--metrics-host", "127.0.0.1"],
            capture_output=True, text=True, env=cli_environment(), timeout=60,
        )  # fmt: skip
    assert result.returncode == 2
    assert f"--metrics-port: cannot listen on 127.0.0.1:{port}: Address already in use" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "never-opened.db").exists()


def test_run_without_the_metrics_extra_says_what_to_install(tmp_path: Path) -> None:
    without = (
        "import sys; sys.modules['prometheus_client'] = None; "
        "from ordered_sender.cli.app import main; main()"
    )
    result = subprocess.run(
        [sys.executable, "-c", without, "run", "--outbox", str(tmp_path / "o.db"),
         "--metrics-port", "0"],
        capture_output=True, text=True, env=cli_environment(), timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert "--metrics-port" in result.stderr
    assert "pip install 'ordered-sender[metrics]'" in result.stderr
    assert "Traceback" not in result.stderr
