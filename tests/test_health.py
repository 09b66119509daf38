"""Sender-wide holds: a dead or refusing endpoint gets a probe every few seconds however many lanes
wait, and every lane goes again as soon as a probe gets through."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from pathlib import Path

import pytest

from ordered_sender import OrderedSender, SenderConfig
from ordered_sender.health import Hold, held_until, requests_allowed
from ordered_sender.message import Message
from ordered_sender.testing import MockTransport
from ordered_sender.transport import BatchResponse, RequestError, RequestErrorKind, Transport
from ordered_sender.transport.iotevents import IotEventsTransport, build_client

LANES = 1_000


def test_a_hold_doubles_with_each_failure_in_a_row_up_to_its_most_and_ends_on_success() -> None:
    hold = Hold(first=0.1, most=2.0)
    seen = []
    for now in range(8):
        hold = hold.failed(float(now))
        seen.append(round(hold.until - now, 3))
    assert seen == [0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0, 2.0]
    assert hold.succeeded() == Hold(first=0.1, most=2.0)


@pytest.mark.parametrize(
    ("now", "in_flight", "credentials", "endpoint", "allowed"),
    [
        (10.0, 0, Hold(1, 60), Hold(0.1, 2), 4),  # healthy: one request per free worker
        (10.0, 1, Hold(1, 60), Hold(0.1, 2), 3),
        (10.0, 0, Hold(1, 60, 1, 11.0), Hold(0.1, 2), 0),  # credentials refused: held
        (10.0, 0, Hold(1, 60), Hold(0.1, 2, 3, 10.4), 0),  # endpoint failing: held...
        (10.5, 0, Hold(1, 60), Hold(0.1, 2, 3, 10.4), 1),  # ...then one probe
        (10.5, 1, Hold(1, 60), Hold(0.1, 2, 3, 10.4), 0),  # ...and only one at a time
    ],
)
def test_requests_allowed_follow_the_holds(
    now: float, in_flight: int, credentials: Hold, endpoint: Hold, allowed: int
) -> None:
    free = 4 - in_flight
    assert (
        requests_allowed(
            now=now,
            free_workers=free,
            in_flight=in_flight,
            credentials=credentials,
            endpoint=endpoint,
        )
        == allowed
    )
    assert held_until(credentials, endpoint) == max(credentials.until, endpoint.until)


class SettableClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Switch:
    """An endpoint that is down until ``up`` is set, then processes everything."""

    def __init__(self) -> None:
        self.up = False

    def __call__(self, messages: Sequence[Message]) -> BatchResponse:
        if self.up:
            return BatchResponse()
        error = RequestError(RequestErrorKind.CONNECTION, "EndpointConnectionError", "refused")
        return BatchResponse(request_error=error)


def run_for(sender: OrderedSender, clock: SettableClock, seconds: float, step: float) -> None:
    """Let ``seconds`` of the sender's clock pass in ``step``s, delivering what is due at each."""
    for _ in range(round(seconds / step)):
        clock.now += step
        sender.deliver_due()


def test_a_dead_endpoint_gets_a_few_probes_a_second_whatever_the_lane_count(outbox: Path) -> None:
    switch = Switch()
    transport = MockTransport(switch)
    clock = SettableClock(1_700_000_000.0)
    config = SenderConfig(concurrency=8)
    with OrderedSender(
        outbox, transport=transport, config=config, clock=clock, autostart=False
    ) as sender:
        sender.put_many([(f"Lane{n}", {"n": n}) for n in range(LANES)])
        sender.deliver_due()
        run_for(sender, clock, seconds=60.0, step=0.05)
        down_requests = len(transport.requests)

        switch.up = True
        run_for(sender, clock, seconds=2.0, step=0.05)
        assert sender.counts().pending == 0

    # 0.1 s doubling to 2 s: about 6 probes to reach the cap, then one every 2 s for the minute.
    assert down_requests <= 6 + 60 / 2 + 2
    assert all(len(request) == 10 for request in transport.requests[:down_requests])


class Counting:
    """The real transport, counting the requests it was given."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.requests = 0

    def send(self, messages: Sequence[Message]) -> BatchResponse:
        self.requests += 1
        return self.transport.send(messages)


def test_a_refused_connection_through_boto3_holds_every_lane_not_each_alone(outbox: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = build_client(timeout=1.0, endpoint_url=f"http://127.0.0.1:{port}")
    counting = Counting(IotEventsTransport(client))
    clock = SettableClock(1_700_000_000.0)
    with OrderedSender(outbox, transport=counting, clock=clock, autostart=False) as sender:
        sender.put_many([(f"Lane{n}", {"n": n}) for n in range(200)])
        run_for(sender, clock, seconds=10.0, step=0.1)
        (lane, *_) = sender.store.lanes_overview(1)
    assert counting.requests <= 6 + 10 / 2 + 2
    assert lane.last_error_code == "EndpointConnectionError"
