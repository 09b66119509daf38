"""The life of a lane: its states, the events that move it, and the one function that says where
each event leads. Pure: no I/O, no clock, no threads.

The store keeps what a lane's state is made of (its head, when the head may next be sent, whether
it is paused); the sender keeps which lanes are in flight. Both only carry out the transitions
below; ``observed_state`` reads the state back from those facts, for ``status`` and for tests.

Two events stop a lane: PAUSE is the failure policy's (a permanent failure of the head in flight,
under the pause policy), HOLD an operator's (``pause(lane)``), from any state with a head.

| state            | event       | next state        | what happens                               |
|------------------|-------------|-------------------|--------------------------------------------|
| IDLE             | PUT         | READY             | the new message is the head, due at once   |
| IDLE             | REDRIVE     | READY             | the dead letter is the head again          |
| READY            | PUT         | READY             | queued behind the head                     |
| READY            | SENT        | IN_FLIGHT         | the head is in a request; nothing else of  |
|                  |             |                   | the lane is sent until its outcome is      |
|                  |             |                   | recorded                                   |
| READY            | REDRIVE     | READY             | the dead letter goes before the head       |
| READY            | HOLD        | PAUSED            | an operator's pause, at the head           |
| BACKOFF          | PUT         | BACKOFF           | queued behind the head                     |
| BACKOFF          | DUE         | READY             | the head's next attempt time came          |
| BACKOFF          | REDRIVE     | READY             | the dead letter goes first, due at once    |
| BACKOFF          | HOLD        | PAUSED            | an operator's pause, at the head           |
| IN_FLIGHT        | PUT         | IN_FLIGHT         | queued behind the head                     |
| IN_FLIGHT        | DELIVERED   | READY (BACKOFF    | the next message is the head               |
|                  |             | when the next     |                                            |
|                  |             | head is not due   |                                            |
|                  |             | yet, IDLE when    |                                            |
|                  |             | nothing is left)  |                                            |
| IN_FLIGHT        | RETRY       | BACKOFF           | transient failure: same messageId later    |
| IN_FLIGHT        | PAUSE       | PAUSED            | permanent failure, pause policy: the head  |
|                  |             |                   | stays                                      |
| IN_FLIGHT        | DEAD_LETTER | READY (BACKOFF    | permanent failure, dead-letter policy: the |
|                  |             | when the next     | head moves to the dead letters, the lane   |
|                  |             | head is not due   | goes on                                    |
|                  |             | yet, IDLE when    |                                            |
|                  |             | nothing is left)  |                                            |
| IN_FLIGHT        | REDRIVE     | IN_FLIGHT         | the dead letter is sent after this outcome |
| IN_FLIGHT        | HOLD        | PAUSED_IN_FLIGHT  | an operator's pause; the head's outcome is |
|                  |             |                   | still to be recorded                       |
| PAUSED           | PUT         | PAUSED            | queued behind the stopped head             |
| PAUSED           | HOLD        | PAUSED            | paused already: nothing changes (False)    |
| PAUSED           | RESUME      | READY             | the head is due at once, its attempts      |
|                  |             |                   | reset                                      |
| PAUSED_IN_FLIGHT | PUT         | PAUSED_IN_FLIGHT  | queued behind the head                     |
| PAUSED_IN_FLIGHT | DELIVERED   | PAUSED (IDLE when | the pause moves on to the next message;    |
|                  |             | nothing is left)  | with none left the lane is gone, pause and |
|                  |             |                   | all                                        |
| PAUSED_IN_FLIGHT | RETRY       | PAUSED            | the failure is recorded, the pause stays   |
| PAUSED_IN_FLIGHT | PAUSE       | PAUSED            | the pause names the failure instead        |
| PAUSED_IN_FLIGHT | DEAD_LETTER | PAUSED (IDLE when | the head moves to the dead letters, the    |
|                  |             | nothing is left)  | pause to the next message (as DELIVERED)   |
| PAUSED_IN_FLIGHT | HOLD        | PAUSED_IN_FLIGHT  | paused already: nothing changes (False)    |
| PAUSED_IN_FLIGHT | RESUME      | IN_FLIGHT         | unpaused, the head's attempts reset; its   |
|                  |             |                   | outcome is still to be recorded            |

Every other pair is illegal and raises ``IllegalTransition``: a paused lane sends nothing and takes
no redrive (resume it first), only a lane with a head in flight has an outcome, and a lane with
nothing pending cannot be held (``pause`` raises NothingPending: there is nothing to hold).

A redriven dead letter takes its place in the lane by put order: before every message put after it,
which is the head's place in the common case of one dead letter. When another message put before it
is the head already (two dead letters redriven, the older first), it waits behind that head like a
put, and the lane keeps its state. A pause names the message that failed (its attempts are reset
on RESUME); when a redrive slipped in before that message while it was in flight, the resumed lane
goes on in put order, the redriven message first. The next head is not due yet when it waits for a
retry of its own (it was the head and failed before a dead letter was redriven in front of it) or
for the lane's rate (``max_messages_per_second_per_lane``).

A hold names the lane's head when it lands; while that head is in flight, its outcome moves the
hold along as the table says. A RESUME while the head is in flight resets its attempts, and a
failure of that attempt counts from the reset: the sender judges a failure from the head as stored
when the answer comes (``Store.pending_messages``), whichever process resumed the lane.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass


class LaneState(enum.Enum):
    IDLE = "idle"
    """Nothing pending."""
    READY = "ready"
    """The head may be sent now."""
    BACKOFF = "backoff"
    """The head waits for its next attempt time: after a transient failure, or for the lane's
    rate."""
    IN_FLIGHT = "in_flight"
    """The head is in a request whose outcome is not recorded yet."""
    PAUSED = "paused"
    """Stopped at its head until ``resume``: after a permanent failure (PAUSE) or by an operator
    (HOLD)."""
    PAUSED_IN_FLIGHT = "paused_in_flight"
    """An operator paused it while its head was in flight: that head's outcome is still to be
    recorded, and the lane stays paused after it (or is gone, with nothing left)."""


class LaneEvent(enum.Enum):
    PUT = "put"
    DUE = "due"
    SENT = "sent"
    DELIVERED = "delivered"
    RETRY = "retry"
    PAUSE = "pause"
    """The failure policy's pause."""
    DEAD_LETTER = "dead_letter"
    RESUME = "resume"
    REDRIVE = "redrive"
    HOLD = "hold"
    """An operator's pause (``pause(lane)``)."""


class IllegalTransition(Exception):
    """An event that cannot happen in a lane's state: a bug in whoever raised the event."""

    def __init__(self, state: LaneState, event: LaneEvent) -> None:
        self.state = state
        self.event = event
        super().__init__(f"a lane in state {state.value} cannot take event {event.value}")


@dataclass(frozen=True, slots=True)
class OrIdle:
    """The target of a head leaving the lane (DELIVERED, DEAD_LETTER): ``state``, or IDLE when
    the lane has nothing left; READY is BACKOFF when the next head is not due yet."""

    state: LaneState


S, E = LaneState, LaneEvent
TRANSITIONS: Mapping[tuple[LaneState, LaneEvent], LaneState | OrIdle] = {
    (S.IDLE, E.PUT): S.READY,
    (S.IDLE, E.REDRIVE): S.READY,
    (S.READY, E.PUT): S.READY,
    (S.READY, E.SENT): S.IN_FLIGHT,
    (S.READY, E.REDRIVE): S.READY,
    (S.READY, E.HOLD): S.PAUSED,
    (S.BACKOFF, E.PUT): S.BACKOFF,
    (S.BACKOFF, E.DUE): S.READY,
    (S.BACKOFF, E.REDRIVE): S.READY,
    (S.BACKOFF, E.HOLD): S.PAUSED,
    (S.IN_FLIGHT, E.PUT): S.IN_FLIGHT,
    (S.IN_FLIGHT, E.DELIVERED): OrIdle(S.READY),
    (S.IN_FLIGHT, E.RETRY): S.BACKOFF,
    (S.IN_FLIGHT, E.PAUSE): S.PAUSED,
    (S.IN_FLIGHT, E.DEAD_LETTER): OrIdle(S.READY),
    (S.IN_FLIGHT, E.REDRIVE): S.IN_FLIGHT,
    (S.IN_FLIGHT, E.HOLD): S.PAUSED_IN_FLIGHT,
    (S.PAUSED, E.PUT): S.PAUSED,
    (S.PAUSED, E.HOLD): S.PAUSED,
    (S.PAUSED, E.RESUME): S.READY,
    (S.PAUSED_IN_FLIGHT, E.PUT): S.PAUSED_IN_FLIGHT,
    (S.PAUSED_IN_FLIGHT, E.DELIVERED): OrIdle(S.PAUSED),
    (S.PAUSED_IN_FLIGHT, E.RETRY): S.PAUSED,
    (S.PAUSED_IN_FLIGHT, E.PAUSE): S.PAUSED,
    (S.PAUSED_IN_FLIGHT, E.DEAD_LETTER): OrIdle(S.PAUSED),
    (S.PAUSED_IN_FLIGHT, E.HOLD): S.PAUSED_IN_FLIGHT,
    (S.PAUSED_IN_FLIGHT, E.RESUME): S.IN_FLIGHT,
}
"""The table of the module docstring, as data."""
del S, E


def transition(
    state: LaneState,
    event: LaneEvent,
    *,
    lane_empty_after: bool = False,
    next_head_due: bool = True,
) -> LaneState:
    """Where ``event`` takes a lane in ``state``. For DELIVERED and DEAD_LETTER,
    ``lane_empty_after`` says whether the head was the lane's last pending message, and
    ``next_head_due`` whether the next head may be sent at once."""
    target = TRANSITIONS.get((state, event))
    if target is None:
        raise IllegalTransition(state, event)
    if isinstance(target, OrIdle):
        if lane_empty_after:
            return LaneState.IDLE
        if target.state is LaneState.READY and not next_head_due:
            return LaneState.BACKOFF
        return target.state
    return target


def observed_state(
    *, pending: bool, paused: bool, in_flight: bool, next_attempt_at: float, now: float
) -> LaneState:
    """A lane's state read from the facts the store and the sender keep. Only the sender knows
    what it has in flight: read from the store alone (``in_flight=False``, as ``status`` does), a
    lane paused while its head is in flight shows as PAUSED."""
    if not pending:
        return LaneState.IDLE
    if paused:
        return LaneState.PAUSED_IN_FLIGHT if in_flight else LaneState.PAUSED
    if in_flight:
        return LaneState.IN_FLIGHT
    return LaneState.READY if next_attempt_at <= now else LaneState.BACKOFF
