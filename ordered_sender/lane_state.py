"""The life of a lane: its states, the events that move it, and the one function that says where
each event leads. Pure: no I/O, no clock, no threads.

The store keeps what a lane's state is made of (its head, when the head may next be sent, whether
it is paused); the sender keeps which lanes are in flight. Both only carry out the transitions
below; ``observed_state`` reads the state back from those facts, for ``status`` and for tests.

| state     | event       | next state        | what happens                                    |
|-----------|-------------|-------------------|-------------------------------------------------|
| IDLE      | PUT         | READY             | the new message is the head, due at once        |
| IDLE      | REDRIVE     | READY             | the dead letter is the head again               |
| READY     | PUT         | READY             | queued behind the head                          |
| READY     | SENT        | IN_FLIGHT         | the head is in a request; nothing else of the   |
|           |             |                   | lane is sent until its outcome is recorded      |
| READY     | REDRIVE     | READY             | the dead letter goes before the head            |
| BACKOFF   | PUT         | BACKOFF           | queued behind the head                          |
| BACKOFF   | DUE         | READY             | the head's next attempt time came               |
| BACKOFF   | REDRIVE     | READY             | the dead letter goes first, due at once         |
| IN_FLIGHT | PUT         | IN_FLIGHT         | queued behind the head                          |
| IN_FLIGHT | DELIVERED   | READY (IDLE when  | the next message is the head                    |
|           |             | nothing is left)  |                                                 |
| IN_FLIGHT | RETRY       | BACKOFF           | transient failure: same messageId later         |
| IN_FLIGHT | PAUSE       | PAUSED            | permanent failure, pause policy: head stays     |
| IN_FLIGHT | DEAD_LETTER | READY (IDLE when  | permanent failure, dead-letter policy: the head |
|           |             | nothing is left)  | moves to the dead letters, the lane goes on     |
| IN_FLIGHT | REDRIVE     | IN_FLIGHT         | the dead letter is sent after this outcome      |
| PAUSED    | PUT         | PAUSED            | queued behind the stopped head                  |
| PAUSED    | RESUME      | READY             | the head is due at once, its attempts reset     |

Every other pair is illegal and raises ``IllegalTransition``: a paused lane sends nothing and takes
no redrive (resume it first), and only an in-flight lane has an outcome.

A redriven dead letter takes its place in the lane by put order: before every message put after it,
which is the head's place in the common case of one dead letter. When another message put before it
is the head already (two dead letters redriven, the older first), it waits behind that head like a
put, and the lane keeps its state. A pause names the message that failed (its attempts are reset
on RESUME); when a redrive slipped in before that message while it was in flight, the resumed lane
goes on in put order, the redriven message first.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping


class LaneState(enum.Enum):
    IDLE = "idle"
    """Nothing pending."""
    READY = "ready"
    """The head may be sent now."""
    BACKOFF = "backoff"
    """The head waits for its next attempt time after a transient failure."""
    IN_FLIGHT = "in_flight"
    """The head is in a request whose outcome is not recorded yet."""
    PAUSED = "paused"
    """Stopped at its head after a permanent failure, until ``resume``."""


class LaneEvent(enum.Enum):
    PUT = "put"
    DUE = "due"
    SENT = "sent"
    DELIVERED = "delivered"
    RETRY = "retry"
    PAUSE = "pause"
    DEAD_LETTER = "dead_letter"
    RESUME = "resume"
    REDRIVE = "redrive"


class IllegalTransition(Exception):
    """An event that cannot happen in a lane's state: a bug in whoever raised the event."""

    def __init__(self, state: LaneState, event: LaneEvent) -> None:
        self.state = state
        self.event = event
        super().__init__(f"a lane in state {state.value} cannot take event {event.value}")


_EMPTIES = object()
"""Marks the transitions whose target is READY, or IDLE when the lane has nothing left."""

S, E = LaneState, LaneEvent
TRANSITIONS: Mapping[tuple[LaneState, LaneEvent], LaneState | object] = {
    (S.IDLE, E.PUT): S.READY,
    (S.IDLE, E.REDRIVE): S.READY,
    (S.READY, E.PUT): S.READY,
    (S.READY, E.SENT): S.IN_FLIGHT,
    (S.READY, E.REDRIVE): S.READY,
    (S.BACKOFF, E.PUT): S.BACKOFF,
    (S.BACKOFF, E.DUE): S.READY,
    (S.BACKOFF, E.REDRIVE): S.READY,
    (S.IN_FLIGHT, E.PUT): S.IN_FLIGHT,
    (S.IN_FLIGHT, E.DELIVERED): _EMPTIES,
    (S.IN_FLIGHT, E.RETRY): S.BACKOFF,
    (S.IN_FLIGHT, E.PAUSE): S.PAUSED,
    (S.IN_FLIGHT, E.DEAD_LETTER): _EMPTIES,
    (S.IN_FLIGHT, E.REDRIVE): S.IN_FLIGHT,
    (S.PAUSED, E.PUT): S.PAUSED,
    (S.PAUSED, E.RESUME): S.READY,
}
"""The table of the module docstring, as data."""
del S, E


def transition(state: LaneState, event: LaneEvent, *, lane_empty_after: bool = False) -> LaneState:
    """Where ``event`` takes a lane in ``state``. ``lane_empty_after`` says, for DELIVERED and
    DEAD_LETTER, whether the head was the lane's last pending message."""
    target = TRANSITIONS.get((state, event))
    if target is None:
        raise IllegalTransition(state, event)
    if target is _EMPTIES:
        return LaneState.IDLE if lane_empty_after else LaneState.READY
    assert isinstance(target, LaneState)
    return target


def observed_state(
    *, pending: bool, paused: bool, in_flight: bool, next_attempt_at: float, now: float
) -> LaneState:
    """A lane's state read from the facts the store and the sender keep."""
    if not pending:
        return LaneState.IDLE
    if paused:
        return LaneState.PAUSED
    if in_flight:
        return LaneState.IN_FLIGHT
    return LaneState.READY if next_attempt_at <= now else LaneState.BACKOFF
