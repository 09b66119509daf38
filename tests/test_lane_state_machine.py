"""A hypothesis stateful test of the lane state machine, driving the real thing.

An OrderedSender on a real SQLite file (autostart=False, delivery driven by ``deliver_due`` in
this thread, an injected clock the rules advance) sends through a MockTransport whose answers
come from a script the rules set. Beside it runs a model: each lane's pending messages and its
LaneState, moved by ``lane_state.transition`` (the pure function the library documents), and
what the service must see. After every step the store, the transport's record and the model
must agree.

Order, precisely: a message may be sent (hence delivered) only while it is its lane's head in the
model. The head is the lane's oldest pending message (by put order, ``seq``): every message put
before it has left the lane (delivered, dropped, or in the dead letters). A dead letter redriven
later takes its place again by put order, so it goes before every pending message put after it;
that is the one way a lane's deliveries leave put order. A pause names the message that failed,
which is not the head when a dead letter was redriven while that message was in flight: the lane
then goes on in put order once resumed, the redriven message first, and resuming gives the failed
message its fresh attempts.

Redrive and the table: the table says a redriven dead letter goes before the head. The store puts
it back by put order, so a dead letter redriven after an older one that is still pending queues
behind that one; the model then moves the lane with PUT (queued behind the head), not REDRIVE.

An operator's pause (HOLD) lands on any lane, or while the first lane of a request is in flight
(``during_send``): then the head's outcome is still recorded and moves the pause along
(PAUSED_IN_FLIGHT), and a resume before the outcome puts the lane back IN_FLIGHT. The model keeps
which pauses are an operator's, and the store must name exactly those PausedByOperator.

Run longer with ``ORDERED_SENDER_STATEFUL_EXAMPLES=500`` (examples) and
``ORDERED_SENDER_STATEFUL_STEPS=60`` (steps per example).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest
import structlog
import tenacity
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context, event
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from ordered_sender import NothingPending, OrderedSender, Outbox, OutboxInUse, SenderConfig
from ordered_sender.errors import LanePaused
from ordered_sender.lane_state import LaneEvent, LaneState, observed_state, transition
from ordered_sender.message import Message
from ordered_sender.store import PAUSED_BY_OPERATOR, MessageState
from ordered_sender.testing import MockTransport
from ordered_sender.transport import BatchResponse, EntryError, RequestError, RequestErrorKind

LANES = ("A", "B", "C", "D", "E")
WAIT = 1.0
"""retry_wait: every failed attempt is retried this many seconds later."""
MAX_ATTEMPTS = 3
"""retry_stop: the third failed attempt of a message is a permanent failure."""
CONCURRENCY = 2
MESSAGES_PER_REQUEST = 2
"""Small, so that five lanes need more than one plan and the oldest-put-first rule shows."""
START = 1_700_000_000.0
SOME_LANE = st.sampled_from(("A", "A", "A", "B", "B", "C", "D", "E"))
"""Lane A most often: a lane needs several puts, failures and redrives to reach its corners."""

Policy = Literal["pause", "dead_letter"]
LaneAnswer = Literal["deliver", "throttle", "invalid"]
RequestAnswer = Literal["none", "unavailable", "connection", "credentials"]
DuringSend = Literal["nothing", "put", "redrive", "hold", "hold_resume", "redrive_hold"]
DURING_SEND: dict[DuringSend, tuple[Literal["put", "redrive", "hold", "resume"], ...]] = {
    "nothing": (),
    "put": ("put",),
    "redrive": ("redrive",),
    "hold": ("hold",),
    "hold_resume": ("hold", "resume"),
    "redrive_hold": ("redrive", "hold"),
}
"""What each ``during_send`` does, in order, while the lane's head is in flight."""
Kind = Literal["delivered", "transient", "permanent", "halt"]
ENTRY_OUTCOMES: dict[LaneAnswer, Kind] = {
    "deliver": "delivered",
    "throttle": "transient",
    "invalid": "permanent",
}


def config(policy: Policy) -> SenderConfig:
    return SenderConfig(
        concurrency=CONCURRENCY,
        max_messages_per_request=MESSAGES_PER_REQUEST,
        retry_wait=tenacity.wait_fixed(WAIT),
        retry_stop=tenacity.stop_after_attempt(MAX_ATTEMPTS),
        on_permanent_failure=policy,
        synchronous="OFF",
    )


@dataclass
class ModelMessage:
    lane: str
    n: int
    seq: int
    message_id: str
    state: MessageState = MessageState.PENDING
    attempts: int = 0
    next_attempt_at: float = 0.0


@dataclass
class Sent:
    """A message the transport was given, with the outcome the script gave it."""

    message: ModelMessage
    kind: Kind
    now: float
    policy: Policy
    whole_request: bool = False
    """The request failed as a whole (503, connection): the endpoint's fault, not the lane's."""


def note(text: str) -> None:
    """A hypothesis event (see ``--hypothesis-show-statistics``), also when run by hand."""
    if currently_in_test_context():
        event(text)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


class LaneMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.directory = Path(tempfile.mkdtemp(prefix="lane-machine-"))
        self.path = self.directory / "outbox.db"
        self.clock = Clock()
        self.transport = MockTransport(self.answer)
        self.logs = contextlib.ExitStack()
        self.captured = self.logs.enter_context(structlog.testing.capture_logs())
        self.policy: Policy = "pause"
        self.sender: OrderedSender | None = None
        # The script.
        self.lane_answers: dict[str, LaneAnswer] = dict.fromkeys(LANES, "deliver")
        self.request_answer: RequestAnswer = "none"
        self.during_send: DuringSend = "nothing"
        """Done once, by the handler, to the first lane of the next request (in flight then)."""
        # The model.
        self.messages: dict[str, ModelMessage] = {}
        self.states: dict[str, LaneState] = dict.fromkeys(LANES, LaneState.IDLE)
        self.counters: dict[str, int] = dict.fromkeys(LANES, 0)
        self.reset_holds()
        self.outstanding: list[Sent] = []
        self.requests: list[tuple[Message, ...]] = []
        self.delivered: dict[str, list[str]] = {lane: [] for lane in LANES}
        self.paused_at: dict[str, ModelMessage] = {}
        """The message each paused lane failed at, or its head when an operator paused it."""
        self.held: set[str] = set()
        """The paused lanes whose pause is an operator's (PausedByOperator), not a failure's."""

    # -- the real thing ------------------------------------------------------------------------

    def open_sender(self, policy: Policy) -> OrderedSender:
        self.policy = policy
        self.sender = OrderedSender(
            self.path,
            config=config(policy),
            transport=self.transport,
            clock=self.clock,
            autostart=False,
        )
        # The sender-wide holds live in memory only; a new sender starts without them.
        self.reset_holds()
        return self.sender

    def reset_holds(self) -> None:
        self.credential_failures = 0
        self.credentials_until = 0.0
        self.endpoint_failures = 0
        self.endpoint_until = 0.0

    @property
    def halted_until(self) -> float:
        """Nothing is sent before this: the credentials' and the endpoint's holds (health.py)."""
        return max(self.credentials_until, self.endpoint_until)

    def judge_request(self, now: float) -> None:
        """The sender-wide holds after a request answered with ``request_answer``: 1 s doubling
        to 60 s while the credentials are refused, 0.1 s doubling to 2 s while the endpoint fails
        whole requests; any other answer releases them (a refusal leaves the endpoint's)."""
        if self.request_answer == "credentials":
            self.credential_failures += 1
            self.credentials_until = now + min(60.0, 2.0 ** (self.credential_failures - 1))
            return
        self.credential_failures, self.credentials_until = 0, 0.0
        if self.request_answer in ("unavailable", "connection"):
            self.endpoint_failures += 1
            self.endpoint_until = now + min(2.0, 0.1 * 2.0 ** (self.endpoint_failures - 1))
        else:
            self.endpoint_failures, self.endpoint_until = 0, 0.0

    def teardown(self) -> None:
        try:
            if self.sender is not None:
                self.sender.close()
        finally:
            self.logs.close()
            shutil.rmtree(self.directory, ignore_errors=True)

    def answer(self, messages: Sequence[Message]) -> BatchResponse:
        """The MockTransport's handler: check what is sent against the model, answer by script."""
        self.record_outcomes()
        self.advance_due_lanes()
        now = self.clock.now
        assert now >= self.halted_until, "sent while the sender holds every lane"
        self.judge_request(now)
        whole_request = self.request_answer in ("unavailable", "connection")
        lanes = [message.input_name for message in messages]
        assert len(lanes) == len(set(lanes)), f"two messages of one lane in a request: {lanes}"
        assert 1 <= len(messages) <= MESSAGES_PER_REQUEST
        self.requests.append(tuple(messages))
        in_flight_lane = lanes[0]
        errors: list[EntryError] = []
        for message in messages:
            model = self.messages[message.message_id]
            payload = json.loads(message.payload)
            # The id names the same message for life: resends reuse it.
            assert (payload["lane"], payload["n"]) == (model.lane, model.n)
            assert message.input_name == model.lane
            head = self.head(model.lane)
            assert head is model, (
                f"lane {model.lane}: sent {model.n} while its head is {head and head.n}"
            )
            assert model.next_attempt_at <= now, "a head was sent before its next attempt time"
            # SENT is legal only from READY: not paused, not in backoff, not in flight already.
            self.states[model.lane] = transition(self.states[model.lane], LaneEvent.SENT)
            kind = self.outcome_kind(model.lane)
            self.outstanding.append(Sent(model, kind, now, self.policy, whole_request))
            lane_answer = self.lane_answers[model.lane]
            if self.request_answer == "none" and lane_answer == "throttle":
                errors.append(EntryError(message.message_id, "ThrottlingException", "slow down"))
            elif self.request_answer == "none" and lane_answer == "invalid":
                errors.append(EntryError(message.message_id, "InvalidRequestException", "bad"))
        self.act_during_send(in_flight_lane)
        if self.request_answer == "unavailable":
            error = RequestError(RequestErrorKind.SERVICE, "ServiceUnavailableException", "", 503)
            return BatchResponse(request_error=error)
        if self.request_answer == "connection":
            error = RequestError(RequestErrorKind.CONNECTION, "ConnectionClosedError", "reset")
            return BatchResponse(request_error=error)
        if self.request_answer == "credentials":
            error = RequestError(RequestErrorKind.CREDENTIALS, "AccessDeniedException", "no", 403)
            return BatchResponse(request_error=error)
        return BatchResponse(entry_errors=tuple(errors))

    def act_during_send(self, lane: str) -> None:
        """What the script says to do while ``lane`` is in flight: a put, a redrive, an
        operator's pause (then a resume, or after a redrive)."""
        assert self.sender is not None
        actions, self.during_send = DURING_SEND[self.during_send], "nothing"
        for action in actions:
            if action == "put":
                note("put while in flight")
                self.put_and_model(self.sender, lane, 1)
            elif action == "redrive":
                letters = [m for m in self.dead_letters() if m.lane == lane]
                if letters:
                    note("redrive while in flight")
                    assert self.sender.redrive(letters[0].message_id) is True
                    self.model_redrive(letters[0])
            elif action == "hold":
                note("operator's pause while in flight")
                assert self.sender.pause(lane, "while in flight") is True
                self.model_hold(lane)
                # Paused already: a second pause changes nothing, and a redrive is refused.
                assert self.sender.pause(lane) is False
                self.model_hold(lane)
                letters = [m for m in self.dead_letters() if m.lane == lane]
                if letters:
                    with pytest.raises(LanePaused):
                        self.sender.redrive(letters[0].message_id)
            else:
                note("resume while in flight")
                assert self.sender.resume(lane) is True
                self.model_resume(lane)

    def outcome_kind(self, lane: str) -> Kind:
        if self.request_answer == "credentials":
            return "halt"
        if self.request_answer in ("unavailable", "connection"):
            return "transient"
        return ENTRY_OUTCOMES[self.lane_answers[lane]]

    # -- the model -----------------------------------------------------------------------------

    def pending(self, lane: str) -> list[ModelMessage]:
        pending = MessageState.PENDING
        lane_pending = (m for m in self.messages.values() if m.lane == lane and m.state is pending)
        return sorted(lane_pending, key=lambda m: m.seq)

    def dead_letters(self) -> list[ModelMessage]:
        return sorted(
            (m for m in self.messages.values() if m.state is MessageState.DEAD_LETTER),
            key=lambda m: m.seq,
        )

    def head(self, lane: str) -> ModelMessage | None:
        pending = self.pending(lane)
        return pending[0] if pending else None

    def advance_due_lanes(self) -> None:
        for lane, state in self.states.items():
            head = self.head(lane)
            if state is LaneState.BACKOFF and head and head.next_attempt_at <= self.clock.now:
                self.states[lane] = transition(state, LaneEvent.DUE)

    def due_heads(self) -> list[ModelMessage]:
        self.advance_due_lanes()
        heads = [self.head(lane) for lane, s in self.states.items() if s is LaneState.READY]
        return sorted((h for h in heads if h is not None), key=lambda m: m.seq)

    def record_outcomes(self) -> None:
        """The outcomes of the last request, in the model; the store must hold them already."""
        for sent in self.outstanding:
            self.settle(sent)
            status = self.store_status(sent.message.message_id)
            assert status == sent.message.state, (
                f"{sent.message.message_id}: store says {status}, model {sent.message.state}"
            )
        self.outstanding.clear()

    def settle(self, sent: Sent) -> None:
        lane = sent.message.lane
        before = self.states[lane]
        self.settle_outcome(sent)
        after = self.states[lane]
        note(f"outcome {sent.kind}: {before.name} -> {after.name}")
        if after is LaneState.IDLE:
            # The last message left: the lane is gone, an operator's pause with it.
            self.paused_at.pop(lane, None)
            self.held.discard(lane)
        elif lane in self.paused_at and self.paused_at[lane].state is not MessageState.PENDING:
            # An operator's pause at the head in flight moves on with the head.
            assert lane in self.held
            head = self.head(lane)
            assert head is not None
            self.paused_at[lane] = head

    def settle_outcome(self, sent: Sent) -> None:
        message, lane = sent.message, sent.message.lane
        if sent.kind == "delivered":
            message.state = MessageState.DELIVERED
            self.delivered[lane].append(message.message_id)
            self.head_left(lane, LaneEvent.DELIVERED, sent.now)
            return
        if sent.kind == "halt":
            # A credentials refusal is no attempt; the sender's hold paces it, not the lane.
            message.next_attempt_at = sent.now
            self.states[lane] = transition(self.states[lane], LaneEvent.RETRY)
            return
        message.attempts += 1
        if sent.kind == "transient" and message.attempts < MAX_ATTEMPTS:
            # A request failed whole is the endpoint's fault: due again at once, behind its hold.
            message.next_attempt_at = sent.now + (0.0 if sent.whole_request else WAIT)
            self.states[lane] = transition(self.states[lane], LaneEvent.RETRY)
        elif sent.policy == "pause":
            message.next_attempt_at = sent.now
            if message is not self.head(lane):
                note("pause behind a redriven dead letter")
            self.paused_at[lane] = message
            self.held.discard(lane)
            self.states[lane] = transition(self.states[lane], LaneEvent.PAUSE)
        else:
            message.state = MessageState.DEAD_LETTER
            self.head_left(lane, LaneEvent.DEAD_LETTER, sent.now)

    def head_left(self, lane: str, event: LaneEvent, now: float) -> None:
        """DELIVERED or DEAD_LETTER. The next head may wait for a retry of its own: it failed
        before a dead letter was redriven in front of it, and keeps its next attempt time."""
        head = self.head(lane)
        if head is not None and head.next_attempt_at > now:
            note("the next head waits for its own retry")
        self.states[lane] = transition(
            self.states[lane],
            event,
            lane_empty_after=head is None,
            next_head_due=head is None or head.next_attempt_at <= now,
        )

    def put_and_model(self, putter: OrderedSender | Outbox, lane: str, count: int) -> None:
        numbers = list(range(self.counters[lane], self.counters[lane] + count))
        self.counters[lane] += count
        receipts = putter.put_many([(lane, {"lane": lane, "n": n}) for n in numbers])
        last_seq = max((m.seq for m in self.messages.values()), default=0)
        for n, receipt in zip(numbers, receipts, strict=True):
            assert receipt.lane == lane
            assert receipt.seq > last_seq, "seq is commit order"
            last_seq = receipt.seq
            assert receipt.message_id not in self.messages
            self.messages[receipt.message_id] = ModelMessage(
                lane, n, receipt.seq, receipt.message_id
            )
            self.states[lane] = transition(self.states[lane], LaneEvent.PUT)

    def model_redrive(self, message: ModelMessage) -> None:
        """A redriven dead letter takes its place by put order again. It is the lane's head then
        (REDRIVE), except behind an older dead letter redriven before it that is still pending:
        there it is queued behind the head like a put (PUT; see the module docstring)."""
        head = self.head(message.lane)
        state = self.states[message.lane]
        behind = head is not None and head.seq < message.seq and state is not LaneState.IN_FLIGHT
        message.state = MessageState.PENDING
        message.attempts = 0
        message.next_attempt_at = self.clock.now
        lane_event = LaneEvent.PUT if behind else LaneEvent.REDRIVE
        note(f"redrive: {state.name} + {lane_event.name}")
        self.states[message.lane] = transition(state, lane_event)

    def model_hold(self, lane: str) -> None:
        """An operator's pause of a lane with a head: at that head, unless paused already."""
        state = self.states[lane]
        self.states[lane] = transition(state, LaneEvent.HOLD)
        if state not in (LaneState.PAUSED, LaneState.PAUSED_IN_FLIGHT):
            head = self.head(lane)
            assert head is not None
            self.paused_at[lane] = head
            self.held.add(lane)

    def model_resume(self, lane: str) -> None:
        """The paused message's attempts reset, due at once. Resumed while in flight, its
        attempt's failure counts from the reset: the sender judges a failure from the head as
        stored when the answer comes, not as it was sent."""
        before = self.states[lane]
        self.states[lane] = transition(before, LaneEvent.RESUME)
        self.held.discard(lane)
        paused = self.paused_at.pop(lane)
        if before is LaneState.PAUSED_IN_FLIGHT and any(
            sent.message is paused for sent in self.outstanding
        ):
            note("resume while the paused head is in flight")
        paused.attempts = 0
        paused.next_attempt_at = self.clock.now

    def store_status(self, message_id: str) -> MessageState | None:
        assert self.sender is not None
        status = self.sender.store.status(message_id)
        return None if status is None else status.state

    # -- rules ---------------------------------------------------------------------------------

    @initialize(policy=st.sampled_from(["pause", "dead_letter"]))
    def start(self, policy: Policy) -> None:
        self.open_sender(policy)

    @rule(
        lane=SOME_LANE,
        count=st.integers(min_value=1, max_value=3),
        through_outbox=st.booleans(),
        answer=st.sampled_from(["deliver", "deliver", "throttle", "invalid"]),
    )
    def put(self, lane: str, count: int, through_outbox: bool, answer: LaneAnswer) -> None:
        """Put to a lane, and script how the service answers that lane's messages from now on."""
        assert self.sender is not None
        self.lane_answers[lane] = answer
        if through_outbox:
            # Another producer on the same file, as `Outbox` in another process would be.
            with Outbox(self.path, config(self.policy), clock=self.clock) as outbox:
                self.put_and_model(outbox, lane, count)
        else:
            self.put_and_model(self.sender, lane, count)

    @rule(seconds=st.sampled_from([0.25, 0.5, 1.0, 2.5, 10.0]))
    def advance_clock(self, seconds: float) -> None:
        self.clock.now += seconds

    @rule(
        request_answer=st.sampled_from(
            ["none", "none", "none", "unavailable", "connection", "credentials"]
        ),
        during_send=st.sampled_from(
            ["nothing", "nothing", "put", "redrive", "hold", "hold_resume", "redrive_hold"]
        ),
    )
    def deliver_due(self, request_answer: RequestAnswer, during_send: DuringSend) -> None:
        """Deliver what is due; every request of this call gets ``request_answer`` (else each
        message its lane's answer), and ``during_send`` is done while the first is in flight."""
        assert self.sender is not None
        self.request_answer, self.during_send = request_answer, during_send
        due_before = self.due_heads()
        halted = self.clock.now < self.halted_until
        # While the endpoint fails whole requests, the sender sends one probe at a time.
        probing = self.endpoint_failures > 0
        first = len(self.requests)

        try:
            sent = self.sender.deliver_due()
        finally:
            self.request_answer, self.during_send = "none", "nothing"

        self.record_outcomes()
        requests = self.requests[first:]
        assert sent == len(requests)
        if halted:
            assert requests == [], "sent while the sender holds every lane"
        else:
            # Fairness: the first plan carries the oldest-put due heads, as many as fit.
            # A hold beginning after the first request (or a probe) leaves that one request.
            one_request = probing or request_answer in ("unavailable", "connection", "credentials")
            capacity = (1 if one_request else CONCURRENCY) * MESSAGES_PER_REQUEST
            oldest = due_before[:capacity]
            first_plan = requests[: math.ceil(len(oldest) / MESSAGES_PER_REQUEST)]
            assert {m.message_id for r in first_plan for m in r} == {m.message_id for m in oldest}
            if self.clock.now >= self.halted_until:
                # No hold stopped the call: every due head was sent.
                sent_ids = {m.message_id for r in requests for m in r}
                assert {m.message_id for m in due_before} <= sent_ids
                assert self.due_heads() == [], "deliver_due left a due head unsent"

    @rule(lane=SOME_LANE, reason=st.sampled_from([None, "detector model being replaced"]))
    def pause(self, lane: str, reason: str | None) -> None:
        """An operator's pause: True when it paused the lane, False when paused already;
        NothingPending for a lane with nothing pending."""
        assert self.sender is not None
        state = self.states[lane]
        if state is LaneState.IDLE:
            with pytest.raises(NothingPending):
                self.sender.pause(lane, reason)
            return
        assert self.sender.pause(lane, reason) is (state is not LaneState.PAUSED)
        note(f"operator's pause: {state.name}")
        self.model_hold(lane)

    @rule(lane=SOME_LANE)
    def resume(self, lane: str) -> None:
        assert self.sender is not None
        paused = self.states[lane] is LaneState.PAUSED
        assert self.sender.resume(lane) is paused
        if paused:
            self.model_resume(lane)

    @rule(index=st.integers(min_value=0, max_value=99), drop=st.booleans(), any_id=st.booleans())
    def redrive_or_drop(self, index: int, drop: bool, any_id: bool) -> None:
        """Redrive or drop a dead letter (or, now and then, any message: a no-op, False)."""
        assert self.sender is not None
        dead = self.dead_letters()
        candidates = list(self.messages.values()) if any_id or not dead else dead
        if not candidates:
            assert self.sender.redrive("no-such-message") is False
            assert self.sender.drop("no-such-message") is False
            return
        message = candidates[index % len(candidates)]
        is_dead = message.state is MessageState.DEAD_LETTER
        if drop:
            assert self.sender.drop(message.message_id) is is_dead
            if is_dead:
                message.state = MessageState.DROPPED
            return
        if is_dead and self.states[message.lane] is LaneState.PAUSED:
            with pytest.raises(LanePaused):
                self.sender.redrive(message.message_id)
            return
        assert self.sender.redrive(message.message_id) is is_dead
        if is_dead:
            self.model_redrive(message)

    @rule(policy=st.sampled_from(["pause", "dead_letter"]))
    def restart(self, policy: Policy) -> None:
        assert self.sender is not None
        self.sender.close()
        self.sender = None
        self.open_sender(policy)

    @rule()
    def second_sender_is_refused(self) -> None:
        with pytest.raises(OutboxInUse):
            OrderedSender(
                self.path,
                config=config(self.policy),
                transport=MockTransport(),
                clock=self.clock,
                autostart=False,
            )

    # -- invariants ----------------------------------------------------------------------------

    @invariant()
    def nothing_lost_and_every_message_where_the_model_says(self) -> None:
        if self.sender is None:
            return
        assert not self.outstanding
        for message in self.messages.values():
            status = self.store_status(message.message_id)
            if status is None:
                # Forgotten after the retention period: only ids that left the outbox.
                assert message.state in (MessageState.DELIVERED, MessageState.DROPPED)
            else:
                assert status is message.state, f"{message}: store says {status}"
        delivered = [m for lane in LANES for m in self.delivered[lane]]
        assert len(delivered) == len(set(delivered)), "a message was delivered twice"

    @invariant()
    def counts_match_the_model(self) -> None:
        if self.sender is None:
            return
        counts = self.sender.counts()
        pending = [m for m in self.messages.values() if m.state is MessageState.PENDING]
        paused = [lane for lane, s in self.states.items() if s is LaneState.PAUSED]
        assert counts.pending == len(pending)
        assert counts.dead_letters == sum(
            m.state is MessageState.DEAD_LETTER for m in self.messages.values()
        )
        assert counts.paused_lanes == len(paused)
        assert counts.lanes == len({m.lane for m in pending})
        assert counts.blocked == sum(m.lane in paused for m in pending)

    @invariant()
    def lanes_match_the_model(self) -> None:
        if self.sender is None:
            return
        now = self.clock.now
        self.advance_due_lanes()
        overview = {lane.lane: lane for lane in self.sender.store.lanes_overview(100)}
        pauses = {p.lane: p for p in self.sender.paused_lanes()}
        paused = {lane: pause.message_id for lane, pause in pauses.items()}
        for lane in LANES:
            pending = self.pending(lane)
            row = overview.get(lane)
            assert (row is not None) == bool(pending)
            observed = observed_state(
                pending=bool(pending),
                paused=lane in paused,
                in_flight=False,
                next_attempt_at=row.next_attempt_at if row else 0.0,
                now=now,
            )
            assert observed is self.states[lane], f"lane {lane}: observed {observed}"
            if row is None:
                continue
            head = self.head(lane)
            assert head is not None
            assert row.head_message_id == head.message_id
            assert row.pending == len(pending)
            assert row.attempts == head.attempts
            assert row.paused is (lane in paused)
            if lane in paused:
                assert paused[lane] == self.paused_at[lane].message_id
                by_operator = pauses[lane].error_code == PAUSED_BY_OPERATOR
                assert by_operator is (lane in self.held), f"lane {lane}: {pauses[lane]}"
            else:
                assert row.next_attempt_at == head.next_attempt_at

    @invariant()
    def dead_letters_match_the_model(self) -> None:
        if self.sender is None:
            return
        letters = self.sender.dead_letters()
        expected = self.dead_letters()
        assert [d.message_id for d in letters] == [m.message_id for m in expected]
        assert [d.attempts for d in letters] == [m.attempts for m in expected]

    @invariant()
    def ready_heads_are_the_due_heads_oldest_put_first(self) -> None:
        if self.sender is None:
            return
        heads = self.sender.store.ready_heads(self.clock.now, (), 100)
        assert [h.message.message_id for h in heads] == [m.message_id for m in self.due_heads()]

    @invariant()
    def no_unexpected_errors_were_logged(self) -> None:
        unexpected = [e for e in self.captured if e["event"] in ("transport.unexpected_error",)]
        assert not unexpected


LaneMachine.TestCase.settings = settings(
    max_examples=int(os.environ.get("ORDERED_SENDER_STATEFUL_EXAMPLES", "40")),
    stateful_step_count=int(os.environ.get("ORDERED_SENDER_STATEFUL_STEPS", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestLaneStateMachine = LaneMachine.TestCase


def run_by_hand(*steps: tuple[str, tuple[object, ...]]) -> LaneMachine:
    """Run the machine through ``steps`` (rule name, arguments), checking every invariant after
    each, as hypothesis would; for the corners random runs reach only now and then."""
    machine = LaneMachine()
    invariants = [
        machine.nothing_lost_and_every_message_where_the_model_says,
        machine.counts_match_the_model,
        machine.lanes_match_the_model,
        machine.dead_letters_match_the_model,
        machine.ready_heads_are_the_due_heads_oldest_put_first,
        machine.no_unexpected_errors_were_logged,
    ]
    try:
        for name, arguments in steps:
            getattr(machine, name)(*arguments)
            for check in invariants:
                check()
    finally:
        machine.teardown()
    return machine


def test_a_dead_letter_redriven_after_an_older_one_queues_behind_it() -> None:
    machine = run_by_hand(
        ("start", ("dead_letter",)),
        ("put", ("A", 3, False, "invalid")),
        ("deliver_due", ("none", "nothing")),  # A0, A1, A2 dead letters
        ("put", ("A", 1, False, "throttle")),
        ("deliver_due", ("none", "nothing")),  # A3 in backoff
        ("redrive_or_drop", (0, False, False)),  # A0 goes first, due at once
        ("deliver_due", ("none", "nothing")),  # A0 in backoff
        ("redrive_or_drop", (0, False, False)),  # A1 queues behind A0: the lane stays in backoff
    )
    assert machine.states["A"] is LaneState.BACKOFF


def test_a_pause_after_a_redrive_in_flight_names_the_failed_message_and_resumes_in_put_order() -> (
    None
):
    machine = run_by_hand(
        ("start", ("dead_letter",)),
        ("put", ("A", 1, False, "invalid")),
        ("deliver_due", ("none", "nothing")),  # A0 dead letter
        ("restart", ("pause",)),
        ("put", ("A", 1, False, "invalid")),
        ("deliver_due", ("none", "redrive")),  # A0 redriven while A1 in flight; A1 pauses
        ("put", ("A", 1, False, "deliver")),
        ("resume", ("A",)),
        ("deliver_due", ("none", "nothing")),  # A0 (put first), then A1, then A2
    )
    assert [machine.messages[i].n for i in machine.delivered["A"]] == [0, 1, 2]


def test_an_operator_pause_while_the_head_is_in_flight_moves_on_with_the_delivered_head() -> None:
    machine = run_by_hand(
        ("start", ("pause",)),
        ("put", ("A", 3, False, "deliver")),
        ("deliver_due", ("none", "hold")),  # A0 delivered; the lane stays paused, at A1
        ("put", ("B", 1, False, "deliver")),
        ("deliver_due", ("none", "nothing")),  # B0 only
    )
    assert machine.states["A"] is LaneState.PAUSED
    assert machine.paused_at["A"].n == 1
    assert [machine.messages[i].n for i in machine.delivered["A"]] == [0]
    assert [machine.messages[i].n for i in machine.delivered["B"]] == [0]


def test_a_lane_resumed_while_its_head_is_in_flight_goes_on_in_put_order() -> None:
    machine = run_by_hand(
        ("start", ("dead_letter",)),
        ("put", ("A", 3, False, "deliver")),
        ("deliver_due", ("none", "hold_resume")),  # paused and resumed while A0 is in flight
    )
    assert machine.states["A"] is LaneState.IDLE
    assert [machine.messages[i].n for i in machine.delivered["A"]] == [0, 1, 2]


def test_a_head_that_waits_for_its_retry_behind_a_redriven_dead_letter_waits_after_it() -> None:
    machine = run_by_hand(
        ("start", ("dead_letter",)),
        ("put", ("A", 1, False, "invalid")),
        ("deliver_due", ("none", "nothing")),  # A0 dead letter
        ("put", ("A", 1, False, "throttle")),
        ("deliver_due", ("none", "nothing")),  # A1 throttled: due again in WAIT
        ("redrive_or_drop", (0, False, False)),  # A0 redriven before A1, due at once
        ("put", ("A", 1, False, "deliver")),
        ("deliver_due", ("none", "nothing")),  # A0 delivered; A1 still waits for its retry
        ("advance_clock", (WAIT,)),
        ("deliver_due", ("none", "nothing")),  # A1, then A2
    )
    assert [machine.messages[i].n for i in machine.delivered["A"]] == [0, 1, 2]
