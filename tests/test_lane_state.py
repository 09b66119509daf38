"""The lane state machine as a table: the docstring and the code agree, every legal pair leads
where the table says, every other pair is refused, and ``observed_state`` reads the facts right."""

from __future__ import annotations

import itertools
import re

import pytest

from ordered_sender import lane_state
from ordered_sender.lane_state import (
    TRANSITIONS,
    IllegalTransition,
    LaneEvent,
    LaneState,
    observed_state,
    transition,
)

OR_IDLE = re.compile(
    r"(?P<state>[A-Z_]+) \((?P<waiting>BACKOFF when the next head is not due yet, )?"
    r"IDLE when nothing is left\)"
)
"""How the docstring writes the target of DELIVERED and DEAD_LETTER: READY (or PAUSED, for a
lane paused while its head was in flight) unless the head was the last message, and for READY,
BACKOFF when the next head may not be sent at once."""

FACTS = [
    {"lane_empty_after": empty, "next_head_due": due}
    for empty, due in itertools.product((False, True), repeat=2)
]
"""Every combination of what the DELIVERED and DEAD_LETTER transitions look at."""

OUTCOMES = {LaneEvent.DELIVERED, LaneEvent.RETRY, LaneEvent.PAUSE, LaneEvent.DEAD_LETTER}


def documented_table() -> dict[tuple[LaneState, LaneEvent], str]:
    """The module docstring's table: (state, event) -> its "next state" cell, continuation rows
    (empty state and event cells) joined to the row above."""
    doc = lane_state.__doc__
    assert doc is not None
    rows: list[list[str]] = []
    for line in doc.splitlines():
        if not line.startswith("|") or set(line) <= {"|", "-"}:
            continue
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if cells[0] == "state":
            continue
        if cells[0] == "" and cells[1] == "":
            rows[-1][2] = f"{rows[-1][2]} {cells[2]}".strip()
        else:
            rows.append(cells)
    table: dict[tuple[LaneState, LaneEvent], str] = {}
    for state, event, target, *_ in rows:
        key = (LaneState[state], LaneEvent[event])
        assert key not in table, f"the docstring lists {state} {event} twice"
        table[key] = target
    return table


def expected_target(cell: str, *, lane_empty_after: bool, next_head_due: bool) -> LaneState:
    """The state a documented cell leads to, given what is left in the lane."""
    match = OR_IDLE.fullmatch(cell)
    if match is None:
        return LaneState[cell]
    if lane_empty_after:
        return LaneState.IDLE
    if match["waiting"] and not next_head_due:
        return LaneState.BACKOFF
    return LaneState[match["state"]]


def test_the_docstring_table_and_the_transitions_table_list_the_same_pairs() -> None:
    assert set(documented_table()) == set(TRANSITIONS)


@pytest.mark.parametrize(
    ("state", "event", "cell"),
    [(state, event, cell) for (state, event), cell in documented_table().items()],
    ids=lambda value: getattr(value, "name", None),
)
def test_every_legal_pair_leads_to_the_documented_state(
    state: LaneState, event: LaneEvent, cell: str
) -> None:
    for facts in FACTS:
        assert transition(state, event, **facts) is expected_target(cell, **facts), facts


def test_only_delivered_and_dead_letter_depend_on_what_is_left_in_the_lane() -> None:
    depends = {
        (state, event)
        for state, event in TRANSITIONS
        if len({transition(state, event, **facts) for facts in FACTS}) > 1
    }
    assert depends == {
        (state, event)
        for state in (LaneState.IN_FLIGHT, LaneState.PAUSED_IN_FLIGHT)
        for event in (LaneEvent.DELIVERED, LaneEvent.DEAD_LETTER)
    }


def test_a_head_leaving_leads_to_backoff_only_when_the_lane_goes_on_and_its_next_head_waits() -> (
    None
):
    for event in (LaneEvent.DELIVERED, LaneEvent.DEAD_LETTER):
        assert transition(LaneState.IN_FLIGHT, event, next_head_due=False) is LaneState.BACKOFF
        assert transition(LaneState.IN_FLIGHT, event, next_head_due=True) is LaneState.READY
        # A paused lane stays paused, whenever its next head is due.
        held = transition(LaneState.PAUSED_IN_FLIGHT, event, next_head_due=False)
        assert held is LaneState.PAUSED


@pytest.mark.parametrize(
    ("state", "event"),
    [pair for pair in itertools.product(LaneState, LaneEvent) if pair not in TRANSITIONS],
    ids=lambda value: getattr(value, "name", None),
)
def test_every_other_pair_is_an_illegal_transition(state: LaneState, event: LaneEvent) -> None:
    for facts in FACTS:
        with pytest.raises(IllegalTransition) as raised:
            transition(state, event, **facts)
        assert raised.value.state is state
        assert raised.value.event is event
        assert state.value in str(raised.value)
        assert event.value in str(raised.value)


def test_a_paused_lane_takes_only_puts_a_second_hold_and_resume() -> None:
    legal = {event for event in LaneEvent if (LaneState.PAUSED, event) in TRANSITIONS}
    assert legal == {LaneEvent.PUT, LaneEvent.HOLD, LaneEvent.RESUME}


def test_a_lane_paused_with_its_head_in_flight_takes_the_outcome_and_no_send_or_redrive() -> None:
    legal = {event for event in LaneEvent if (LaneState.PAUSED_IN_FLIGHT, event) in TRANSITIONS}
    assert legal == OUTCOMES | {LaneEvent.PUT, LaneEvent.HOLD, LaneEvent.RESUME}


def test_only_a_lane_with_its_head_in_flight_has_an_outcome() -> None:
    for state, event in TRANSITIONS:
        if event in OUTCOMES:
            assert state in (LaneState.IN_FLIGHT, LaneState.PAUSED_IN_FLIGHT)


def test_no_outcome_of_the_head_in_flight_unpauses_a_held_lane() -> None:
    for event in OUTCOMES:
        for facts in FACTS:
            after = transition(LaneState.PAUSED_IN_FLIGHT, event, **facts)
            assert after in (LaneState.PAUSED, LaneState.IDLE)


def test_an_operator_holds_every_lane_with_a_head_and_a_second_hold_changes_nothing() -> None:
    held = {
        state: transition(state, LaneEvent.HOLD)
        for state in LaneState
        if (state, LaneEvent.HOLD) in TRANSITIONS
    }
    assert held == {
        LaneState.READY: LaneState.PAUSED,
        LaneState.BACKOFF: LaneState.PAUSED,
        LaneState.IN_FLIGHT: LaneState.PAUSED_IN_FLIGHT,
        LaneState.PAUSED: LaneState.PAUSED,
        LaneState.PAUSED_IN_FLIGHT: LaneState.PAUSED_IN_FLIGHT,
    }
    with pytest.raises(IllegalTransition):
        transition(LaneState.IDLE, LaneEvent.HOLD)


def test_a_put_never_changes_a_pending_lane_state() -> None:
    for state in LaneState:
        if state is not LaneState.IDLE:
            assert transition(state, LaneEvent.PUT) is state
    assert transition(LaneState.IDLE, LaneEvent.PUT) is LaneState.READY


def test_every_state_is_reachable_from_idle() -> None:
    reached = {LaneState.IDLE}
    frontier = [LaneState.IDLE]
    while frontier:
        state = frontier.pop()
        for event in LaneEvent:
            for facts in FACTS:
                try:
                    target = transition(state, event, **facts)
                except IllegalTransition:
                    continue
                if target not in reached:
                    reached.add(target)
                    frontier.append(target)
    assert reached == set(LaneState)


@pytest.mark.parametrize(
    ("pending", "paused", "in_flight", "due", "expected"),
    [
        (pending, paused, in_flight, due, expected)
        for pending, paused, in_flight, due in itertools.product((False, True), repeat=4)
        for expected in [
            LaneState.IDLE
            if not pending
            else LaneState.PAUSED_IN_FLIGHT
            if paused and in_flight
            else LaneState.PAUSED
            if paused
            else LaneState.IN_FLIGHT
            if in_flight
            else LaneState.READY
            if due
            else LaneState.BACKOFF
        ]
    ],
)
def test_observed_state_reads_each_combination_of_facts(
    pending: bool, paused: bool, in_flight: bool, due: bool, expected: LaneState
) -> None:
    now = 1000.0
    next_attempt_at = now if due else now + 0.5
    assert (
        observed_state(
            pending=pending,
            paused=paused,
            in_flight=in_flight,
            next_attempt_at=next_attempt_at,
            now=now,
        )
        is expected
    )


def test_observed_state_counts_a_head_due_exactly_now_as_ready() -> None:
    facts = {"pending": True, "paused": False, "in_flight": False}
    assert observed_state(**facts, next_attempt_at=5.0, now=5.0) is LaneState.READY
    assert observed_state(**facts, next_attempt_at=5.000001, now=5.0) is LaneState.BACKOFF
    assert observed_state(**facts, next_attempt_at=0.0, now=5.0) is LaneState.READY
