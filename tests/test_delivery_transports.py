"""Delivery scenarios through both transports, against the emulator with SigV4 verification on.

``transport_kind`` runs each scenario with the boto3 transport and with the lean HttpTransport;
the last test runs one faulty scenario through each and compares what the emulator recorded:
the same requests, carrying the same messages, answered the same way.
"""

from __future__ import annotations

import json
import subprocess
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import tenacity

from ordered_sender import OrderedSender, SenderConfig
from ordered_sender.emulator import Emulator, Faults, TargetedFault
from ordered_sender.testing import ManualClock
from ordered_sender.transport import Transport
from ordered_sender.transport.http import HttpTransport
from ordered_sender.transport.iotevents import IotEventsTransport, build_client

SECRETS = {"testing": "testing"}
"""The key of the conftest's fake AWS environment (and of its ``cli`` fixture)."""
CliRunner = Callable[..., subprocess.CompletedProcess[str]]
LANES = ("A", "B", "C")


def make_transport(kind: str, url: str) -> Transport:
    if kind == "boto3":
        return IotEventsTransport(
            build_client(timeout=5, endpoint_url=url, region_name="us-east-1")
        )
    return HttpTransport.from_environment(endpoint_url=url, region_name="us-east-1", timeout=5)


@pytest.fixture(params=["boto3", "http"])
def transport_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def emu(clock: ManualClock) -> Iterator[Emulator]:
    with Emulator(seed=3, clock=clock, verify_signatures=SECRETS) as started:
        for lane in LANES:
            started.create_input(lane)
        yield started


@pytest.fixture
def sender(
    outbox: Path, emu: Emulator, clock: ManualClock, transport_kind: str
) -> Iterator[OrderedSender]:
    """A sender that sends only on ``deliver_due()``, retrying after 5 s of the manual clock."""
    opened = OrderedSender(
        outbox,
        transport=make_transport(transport_kind, emu.endpoint_url),
        config=SenderConfig(retry_wait=tenacity.wait_fixed(5)),
        clock=clock,
        autostart=False,
    )
    yield opened
    opened.close()


def lanes_as_processed(emu: Emulator) -> dict[str, list[int]]:
    seen: dict[str, list[int]] = defaultdict(list)
    for processed in emu.processed():
        seen[processed.input_name].append(json.loads(processed.payload)["n"])
    return dict(seen)


def put_rounds(sender: OrderedSender, rounds: int) -> None:
    for n in range(rounds):
        sender.put_many([(lane, {"n": n}, f"{lane}-{n}") for lane in LANES])


def test_messages_arrive_in_order_in_every_lane(
    outbox: Path, emu: Emulator, transport_kind: str
) -> None:
    config = SenderConfig(retry_wait=tenacity.wait_fixed(0.002))
    transport = make_transport(transport_kind, emu.endpoint_url)
    with OrderedSender(outbox, transport=transport, config=config) as sender:
        for n in range(40):
            for lane in LANES:
                sender.put(lane, {"n": n})
        assert sender.flush(timeout=60)
    assert lanes_as_processed(emu) == {lane: list(range(40)) for lane in LANES}
    for request in emu.requests():
        inputs = [m.input_name for m in request.messages]
        assert len(inputs) == len(set(inputs)), f"request {request.number} repeats a lane"


def test_an_error_entry_holds_one_lane_while_the_others_advance(
    sender: OrderedSender, emu: Emulator, clock: ManualClock
) -> None:
    put_rounds(sender, 2)
    emu.set_faults(Faults(targeted=(TargetedFault("ThrottlingException", message_id="B-0"),)))
    sender.deliver_due()
    assert [e.message_id for e in emu.requests()[0].error_entries] == ["B-0"]
    assert lanes_as_processed(emu) == {"A": [0, 1], "C": [0, 1]}
    clock.advance(5)
    sender.deliver_due()
    assert lanes_as_processed(emu) == {lane: [0, 1] for lane in LANES}


@pytest.mark.parametrize("status", [429, 500, 503])
def test_a_request_refused_whole_is_sent_again_with_the_same_ids(
    sender: OrderedSender, emu: Emulator, clock: ManualClock, status: int
) -> None:
    put_rounds(sender, 1)
    emu.set_faults(Faults(request_error_rate=1.0, request_error_codes=(status,)))
    sender.deliver_due()
    assert emu.processed() == []
    emu.set_faults(Faults())
    clock.advance(5)
    sender.deliver_due()
    first, second = emu.requests()
    assert first.status == status
    assert {m.message_id for m in first.messages} == {m.message_id for m in second.messages}
    assert lanes_as_processed(emu) == {lane: [0] for lane in LANES}


def test_a_dropped_connection_is_resent_and_deduplicated(
    sender: OrderedSender, emu: Emulator, clock: ManualClock
) -> None:
    put_rounds(sender, 2)
    emu.set_faults(Faults(drop_connection_rate=1.0))
    sender.deliver_due()
    emu.set_faults(Faults())
    clock.advance(5)
    sender.deliver_due()
    assert emu.stats().duplicates_ignored == 3
    assert lanes_as_processed(emu) == {lane: [0, 1] for lane in LANES}


def test_a_wrong_secret_halts_delivery_and_keeps_every_message(
    outbox: Path, emu: Emulator, clock: ManualClock, transport_kind: str, monkeypatch: Any
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    transport = make_transport(transport_kind, emu.endpoint_url)
    with OrderedSender(outbox, transport=transport, clock=clock, autostart=False) as sender:
        put_rounds(sender, 1)
        sender.deliver_due()
        assert sender.counts().pending == 3
        assert sender.paused_lanes() == []
    assert emu.processed() == []


def recorded_run(outbox: Path, kind: str) -> tuple[list[Any], list[Any]]:
    """One faulty scenario through ``kind``'s transport; what the emulator recorded of it."""
    clock = ManualClock()
    faults = Faults(request_error_rate=0.2, entry_error_rate=0.2, drop_connection_rate=0.1)
    with Emulator(
        seed=11, clock=clock, faults=faults, shuffle=False, verify_signatures=SECRETS
    ) as emu:
        for lane in LANES:
            emu.create_input(lane)
        with OrderedSender(
            outbox,
            transport=make_transport(kind, emu.endpoint_url),
            config=SenderConfig(retry_wait=tenacity.wait_fixed(5)),
            clock=clock,
            autostart=False,
        ) as sender:
            put_rounds(sender, 10)
            for _ in range(200):
                if sender.counts().pending == 0:
                    break
                sender.deliver_due()
                clock.advance(5)
            assert sender.counts().pending == 0
        requests = [
            (r.messages, r.status, r.error_code, r.error_entries, r.dropped) for r in emu.requests()
        ]
        processed = [
            (m.message_id, m.input_name, m.payload, m.timestamp_ms) for m in emu.processed()
        ]
    return requests, processed


def test_both_transports_make_the_same_requests_and_get_the_same_answers(
    tmp_path: Path,
) -> None:
    by_boto3 = recorded_run(tmp_path / "boto3.db", "boto3")
    by_http = recorded_run(tmp_path / "http.db", "http")
    requests, processed = by_http
    assert any(status != 200 for _, status, _, _, _ in requests)
    assert any(dropped for *_, dropped in requests)
    assert any(entries for _, _, _, entries, _ in requests)
    assert len(processed) == 30
    assert by_http == by_boto3


def test_the_send_command_delivers_through_either_transport(
    tmp_path: Path, transport_kind: str, cli: CliRunner
) -> None:
    source = tmp_path / "messages.jsonl"
    lines = [{"inputName": lane, "payload": {"n": n}} for n in range(5) for lane in LANES]
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    with Emulator(seed=5, verify_signatures=SECRETS) as emu:
        for lane in LANES:
            emu.create_input(lane)
        result = cli(
            "send", str(source), "--outbox", str(tmp_path / "outbox.db"),
            "--endpoint-url", emu.endpoint_url, "--transport", transport_kind,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert lanes_as_processed(emu) == {lane: list(range(5)) for lane in LANES}
