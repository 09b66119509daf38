"""End to end through real boto3 over HTTP to the emulator: order, retries, pauses, durability."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import pytest
import tenacity

from ordered_sender import LanePaused, OrderedSender, OutboxInUse, SenderClosed, SenderConfig
from ordered_sender.emulator import Emulator, Faults, TargetedFault
from ordered_sender.testing import ManualClock

FAST_RETRIES = SenderConfig(retry_wait=tenacity.wait_fixed(0.002))


def lanes_as_processed(emu: Emulator) -> dict[str, list[int]]:
    """Each input's ``n`` payload values in the order the emulator processed them."""
    seen: dict[str, list[int]] = defaultdict(list)
    for processed in emu.processed():
        seen[processed.input_name].append(json.loads(processed.payload)["n"])
    return dict(seen)


@pytest.mark.slow
def test_2000_messages_over_20_lanes_survive_faults_exactly_once_and_in_order(
    outbox: Path,
) -> None:
    faults = Faults(request_error_rate=0.3, entry_error_rate=0.15, drop_connection_rate=0.03)
    with Emulator(seed=2026, faults=faults, shuffle=True) as emu:
        for lane in range(20):
            emu.create_input(f"Input{lane}")
        with OrderedSender(outbox, client=emu.client("iotevents-data"), config=FAST_RETRIES) as s:
            for n in range(100):
                for lane in range(20):
                    s.put(f"Input{lane}", {"n": n})
            assert s.flush(timeout=120)
            assert s.counts().pending == 0
        stats = emu.stats()
        requests = emu.requests()

        assert lanes_as_processed(emu) == {f"Input{lane}": list(range(100)) for lane in range(20)}
        assert stats.messages_processed == 2000
        assert stats.duplicates_ignored > 0  # dropped connections were resent, same ids
        assert stats.request_errors_injected / stats.requests >= 0.2
        # Entries are judged one by one only in requests that were not refused whole.
        judged = [r for r in requests if r.error_code is None]
        entries = sum(len(r.messages) for r in judged)
        assert sum(len(r.error_entries) for r in judged) / entries >= 0.1
        for request in requests:
            inputs = [m.input_name for m in request.messages]
            assert len(inputs) == len(set(inputs)), f"request {request.number} repeats a lane"
        assert max(len(r.messages) for r in requests) == 10


def test_an_error_entry_fails_one_message_and_the_other_lanes_advance(outbox: Path) -> None:
    clock = ManualClock()
    with Emulator(seed=1, clock=clock) as emu:
        for name in ("A", "B", "C"):
            emu.create_input(name)
        sender = OrderedSender(
            outbox,
            client=emu.client("iotevents-data"),
            clock=clock,
            config=SenderConfig(retry_wait=tenacity.wait_fixed(5)),
            autostart=False,
        )
        try:
            sender.put_many([("A", {"n": 0}), ("B", {"n": 0}, "b-0"), ("C", {"n": 0})])
            sender.put_many([("A", {"n": 1}), ("B", {"n": 1}), ("C", {"n": 1})])
            emu.set_faults(
                Faults(targeted=(TargetedFault("ThrottlingException", message_id="b-0"),))
            )

            sender.deliver_due()

            first = emu.requests()[0]
            assert {m.input_name for m in first.messages} == {"A", "B", "C"}
            assert first.status == 200
            assert [e.message_id for e in first.error_entries] == ["b-0"]
            # A and C went on to their second message; B waits for its backoff with its head.
            assert lanes_as_processed(emu) == {"A": [0, 1], "C": [0, 1]}

            clock.advance(5)
            sender.deliver_due()
            assert lanes_as_processed(emu) == {"A": [0, 1], "B": [0, 1], "C": [0, 1]}
            resent = [m for r in emu.requests() for m in r.messages if m.input_name == "B"]
            assert [m.message_id for m in resent][:2] == ["b-0", "b-0"]
        finally:
            sender.close()


def test_permanent_failure_pauses_the_lane_until_resumed(outbox: Path, emulator: Emulator) -> None:
    emulator.create_input("A")
    emulator.create_input("B")
    emulator.set_faults(
        Faults(targeted=(TargetedFault("InvalidRequestException", message_id="a-1"),))
    )
    sender = OrderedSender(outbox, client=emulator.client("iotevents-data"), autostart=False)
    try:
        sender.put("A", {"n": 0})
        stuck = sender.put("A", {"n": 1}, message_id="a-1")
        behind = sender.put("A", {"n": 2})
        sender.put("B", {"n": 0})
        sender.put("B", {"n": 1})
        for _ in range(3):
            sender.deliver_due()

        assert lanes_as_processed(emulator) == {"A": [0], "B": [0, 1]}
        (paused,) = sender.paused_lanes()
        assert (paused.lane, paused.message_id, paused.error_code) == (
            "A",
            "a-1",
            "InvalidRequestException",
        )
        with pytest.raises(LanePaused, match=r"a-1.*InvalidRequestException"):
            behind.result(timeout=1)
        sender.start()
        assert sender.flush(timeout=10)  # nothing deliverable is left; the paused lane waits
        assert lanes_as_processed(emulator)["A"] == [0]

        assert sender.resume("A")
        assert not sender.resume("A")
        behind.result(timeout=10)
        stuck.result(timeout=1)
        assert lanes_as_processed(emulator)["A"] == [0, 1, 2]
        assert sender.paused_lanes() == []
    finally:
        sender.close()


def test_a_request_refused_whole_is_split_to_find_the_bad_message(outbox: Path) -> None:
    # The endpoint allows 60 payload bytes per request; the sender believes 1024. The request of
    # three lanes is refused whole (400); resent one by one, only the big message is refused.
    with Emulator(seed=3, max_payload_bytes=60) as emu:
        for name in ("A", "B", "C"):
            emu.create_input(name)
        sender = OrderedSender(outbox, client=emu.client("iotevents-data"), autostart=False)
        try:
            sender.put_many([("A", {"n": 0}), ("B", {"n": 0, "pad": "x" * 80}), ("C", {"n": 0})])
            sender.deliver_due()
            sizes = [len(r.messages) for r in emu.requests()]
            assert sizes[0] == 3 and emu.requests()[0].status == 400
            assert sorted(sizes[1:]) == [1, 1, 1]
            assert set(lanes_as_processed(emu)) == {"A", "C"}
            assert [p.lane for p in sender.paused_lanes()] == ["B"]
        finally:
            sender.close()


def test_receipt_flush_and_close_keep_undelivered_messages_for_the_next_sender(
    outbox: Path, emulator: Emulator
) -> None:
    emulator.create_input("A")
    client = emulator.client("iotevents-data")
    with OrderedSender(outbox, client=client) as sender:
        receipt = sender.put("A", {"n": 0})
        receipt.result(timeout=10)
        assert receipt.delivered()
        with pytest.raises(OutboxInUse):
            OrderedSender(outbox, client=client)
    with pytest.raises(SenderClosed):
        sender.put("A", {"n": 1})

    idle = OrderedSender(outbox, client=client, autostart=False)
    idle.put_many([("A", {"n": 1}), ("A", {"n": 2})])
    idle.close()
    with OrderedSender(outbox, client=client) as sender:
        assert sender.flush(timeout=10)
    assert lanes_as_processed(emulator) == {"A": [0, 1, 2]}


def test_time_of_put_travels_as_the_message_timestamp(outbox: Path, emulator: Emulator) -> None:
    emulator.create_input("A")
    put_clock = ManualClock(start=1_600_000_000.25)
    sender = OrderedSender(
        outbox, client=emulator.client("iotevents-data"), clock=put_clock, autostart=False
    )
    sender.put("A", {"n": 0})
    sender.put("A", {"n": 1}, timestamp_ms=42)
    put_clock.advance(3600)  # delivered an hour later, still stamped with the time of put
    sender.deliver_due()
    sender.close()
    assert [p.timestamp_ms for p in emulator.processed("A")] == [1_600_000_000_250, 42]

    quiet = OrderedSender(
        outbox.with_name("no-stamp.db"),
        client=emulator.client("iotevents-data"),
        config=SenderConfig(send_timestamp=False),
        autostart=False,
    )
    quiet.put("A", {"n": 2})
    quiet.deliver_due()
    quiet.close()
    last = emulator.processed("A")[-1]
    assert last.timestamp_ms == int(last.processed_at * 1000)  # none sent: the endpoint's own time


def test_missing_credentials_halt_sending_but_keep_everything(
    outbox: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    emulator.create_input("A")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    # A fresh session: the default one may have cached credentials from an earlier test.
    client = boto3.session.Session().client(
        "iotevents-data", endpoint_url=emulator.endpoint_url, region_name="us-east-1"
    )
    clock = ManualClock()
    sender = OrderedSender(
        outbox,
        client=client,
        clock=clock,
        autostart=False,
        config=SenderConfig(retry_stop=tenacity.stop_after_attempt(1)),
    )
    try:
        sender.put("A", {"n": 0})
        sender.deliver_due()
        assert sender.paused_lanes() == []  # never a permanent failure, whatever retry_stop says
        assert sender.counts().pending == 1
        assert emulator.requests() == []
    finally:
        sender.close()


def test_requests_carry_one_head_per_lane_and_several_lanes(
    outbox: Path, emulator: Emulator
) -> None:
    for name in ("A", "B", "C", "D"):
        emulator.create_input(name)
    sender = OrderedSender(outbox, client=emulator.client("iotevents-data"), autostart=False)
    try:
        sender.put_many([(name, {"n": n}) for n in range(5) for name in ("A", "B", "C", "D")])
        sender.deliver_due()
    finally:
        sender.close()
    requests = emulator.requests()
    assert [sorted(Counter(m.input_name for m in r.messages).values()) for r in requests] == [
        [1, 1, 1, 1]
    ] * 5
    assert lanes_as_processed(emulator) == {name: list(range(5)) for name in "ABCD"}


def test_the_default_transport_reads_the_endpoint_from_the_environment_and_never_retries(
    outbox: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", emulator.endpoint_url)
    emulator.create_input("A")
    emulator.set_faults(Faults(request_error_rate=1.0, request_error_codes=(503,)))
    clock = ManualClock()
    sender = OrderedSender(outbox, clock=clock, autostart=False)
    try:
        sender.put("A", {"n": 0})
        sender.deliver_due()
        assert len(emulator.requests()) == 1  # the transport did not retry on its own
        emulator.set_faults(Faults())
        clock.advance(60)
        sender.deliver_due()
    finally:
        sender.close()
    assert len(emulator.requests()) == 2
    assert lanes_as_processed(emulator) == {"A": [0]}
