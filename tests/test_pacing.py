"""Pacing: a lane's messages no faster than a detector may take them, requests no faster than the
account may send them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ordered_sender import ByInputAndKey, InvalidConfig, OrderedSender, SenderConfig
from ordered_sender.emulator import Emulator
from ordered_sender.emulator.detectors.examples import (
    MOTOR_DETECTOR_MODEL,
    MOTOR_INPUT,
    motor_payload,
)
from ordered_sender.health import Pace
from ordered_sender.testing import ManualClock, MockTransport

MOTORS = ("m1", "m2", "m3")
READINGS = 25


def test_a_pace_lets_a_burst_through_then_one_request_per_interval() -> None:
    pace = Pace(rate=5.0, burst=2.0)
    assert pace.available(100.0) == 2
    pace = pace.took(100.0, 2)
    assert pace.available(100.0) == 0
    assert pace.next_at(100.0) == pytest.approx(100.2)
    assert pace.available(100.2) == 1
    assert pace.available(200.0) == 2  # never more than the burst


@pytest.mark.parametrize("name", ["max_messages_per_second_per_lane", "max_requests_per_second"])
@pytest.mark.parametrize("value", [0, -1, float("nan"), "10", True])
def test_a_pace_that_is_not_a_positive_rate_is_refused_naming_it(name: str, value: object) -> None:
    with pytest.raises(InvalidConfig, match=name):
        SenderConfig(**{name: value})  # type: ignore[arg-type]


@pytest.fixture
def quota_endpoint() -> Iterator[tuple[Emulator, ManualClock]]:
    """The local endpoint refusing an 11th message within a second to one detector, as IoT Events
    does, on a clock the test moves."""
    clock = ManualClock()
    with Emulator(clock=clock, enforce_detector_quota=True) as emulator:
        control = emulator.client("iotevents")
        control.create_input(**MOTOR_INPUT)
        control.create_detector_model(**MOTOR_DETECTOR_MODEL)
        yield emulator, clock


def throttled(emulator: Emulator) -> int:
    return sum(
        1
        for request in emulator.requests()
        for entry in request.error_entries
        if entry.error_code == "ThrottlingException"
    )


def deliver_readings(
    emulator: Emulator, clock: ManualClock, outbox: Path, config: SenderConfig
) -> None:
    client = emulator.client("iotevents-data")
    with OrderedSender(outbox, client=client, config=config, clock=clock, autostart=False) as s:
        s.put_many(
            ("PressureInput", motor_payload(motor, 60 + n % 20))
            for n in range(READINGS)
            for motor in MOTORS
        )
        for _ in range(1_000):
            s.deliver_due()
            if s.counts().pending == 0:
                return
            clock.advance(0.01)
    raise AssertionError("not delivered within 10 s of the endpoint's clock")


def test_lanes_paced_to_the_detector_quota_are_never_throttled(
    quota_endpoint: tuple[Emulator, ManualClock], outbox: Path
) -> None:
    emulator, clock = quota_endpoint
    one_detector_a_lane = SenderConfig(
        lane=ByInputAndKey("motorid"), max_messages_per_second_per_lane=10
    )
    deliver_readings(emulator, clock, outbox, one_detector_a_lane)
    assert throttled(emulator) == 0
    processed = emulator.processed("PressureInput")
    assert len(processed) == READINGS * len(MOTORS)


def test_unpaced_lanes_meet_the_detector_quota(
    quota_endpoint: tuple[Emulator, ManualClock], outbox: Path
) -> None:
    emulator, clock = quota_endpoint
    deliver_readings(emulator, clock, outbox, SenderConfig(lane=ByInputAndKey("motorid")))
    assert throttled(emulator) > 0  # what pacing prevents; everything still arrives in order
    assert len(emulator.processed("PressureInput")) == READINGS * len(MOTORS)


class SettableClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_requests_are_paced_to_the_configured_rate(outbox: Path) -> None:
    transport = MockTransport()
    clock = SettableClock(1_700_000_000.0)
    config = SenderConfig(max_requests_per_second=5, concurrency=2)
    with OrderedSender(
        outbox, transport=transport, config=config, clock=clock, autostart=False
    ) as sender:
        sender.put_many([(f"Lane{n}", {"n": n}) for n in range(500)])
        for _ in range(200):  # two seconds in steps of 10 ms
            sender.deliver_due()
            clock.now += 0.01
    # A burst of 2 (the concurrency), then 5 a second.
    assert 2 + 5 * 2 - 1 <= len(transport.requests) <= 2 + 5 * 2
