"""Prometheus metrics: a sender's stats scraped over HTTP, in process and from `ordered-sender run
--metrics-port` in a subprocess, through boto3 and the emulator."""

from __future__ import annotations

import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
import tenacity
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from ordered_sender import OrderedSender, SenderConfig, SenderStats
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


def test_registering_reads_nothing_and_a_closed_sender_scrapes_empty_with_a_warning(
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
    sender.close()
    with structlog.testing.capture_logs() as events:
        text = generate_latest(registry).decode()
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
