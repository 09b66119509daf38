"""The pure scheduler: batches never hold two messages of one lane; decisions follow the policy."""

from __future__ import annotations

from typing import Any, cast

import pytest
import tenacity
from hypothesis import given
from hypothesis import strategies as st

from ordered_sender.message import Message
from ordered_sender.outcomes import DELIVERED, Outcome, OutcomeKind
from ordered_sender.scheduler import AttemptFailed, RetryPolicy, decide, plan_batches
from ordered_sender.store import Delivered, MoveToDeadLetters, Pause, Retry, StoredMessage


def head(seq: int, lane: str, size: int = 10, **fields: object) -> StoredMessage:
    message = Message("In", b"x" * size, f"id{seq}")
    return StoredMessage(seq, message, lane, enqueued_at=0.0, **fields)  # type: ignore[arg-type]


def plan(heads: list[StoredMessage], **limits: int) -> list[tuple[StoredMessage, ...]]:
    settings = {"max_messages": 10, "max_payload_bytes": 1024, "max_batches": 4} | limits
    return plan_batches(heads, **settings)


def test_heads_of_distinct_lanes_share_requests_of_up_to_ten() -> None:
    batches = plan([head(i, f"lane{i}") for i in range(25)])
    assert [len(b) for b in batches] == [10, 10, 5]
    assert [h.seq for b in batches for h in b] == list(range(25))


def test_a_second_head_of_one_lane_is_a_bug_the_scheduler_refuses() -> None:
    with pytest.raises(ValueError, match="two heads of lane 'a'"):
        plan([head(1, "a"), head(2, "a")])


def test_requests_respect_the_payload_byte_limit() -> None:
    batches = plan([head(i, f"l{i}", size=400) for i in range(5)])
    assert [len(b) for b in batches] == [2, 2, 1]
    assert all(sum(len(h.message.payload) for h in b) <= 1024 for b in batches)


def test_a_message_to_isolate_goes_alone() -> None:
    batches = plan([head(1, "a"), head(2, "b", solo=True), head(3, "c")])
    assert [[h.seq for h in b] for b in batches] == [[1, 3], [2]]


def test_no_more_requests_than_free_slots() -> None:
    batches = plan([head(i, f"l{i}") for i in range(50)], max_batches=2)
    assert sum(len(b) for b in batches) == 20


POLICY = RetryPolicy(
    wait=tenacity.wait_exponential(multiplier=1, max=60), stop=tenacity.stop_after_attempt(4)
)


def test_delivered_and_transient_in_one_request() -> None:
    batch = (head(1, "a"), head(2, "b", attempts=2, first_attempt_at=50.0))
    outcomes = {"id1": DELIVERED, "id2": Outcome(OutcomeKind.TRANSIENT, "ThrottlingException")}
    decisions = decide(batch, outcomes, 100.0, POLICY)
    assert decisions[0] == Delivered(1, next_head_not_before=100.0)  # no pacing: at once
    retry = decisions[1]
    assert isinstance(retry, Retry)
    # third attempt failed: wait_exponential(1) gives 2**(3-1) = 4 seconds.
    assert (retry.attempts, retry.first_attempt_at, retry.next_attempt_at) == (3, 50.0, 104.0)
    assert retry.error_code == "ThrottlingException"


def test_permanent_failure_pauses_the_lane_at_that_message() -> None:
    outcome = Outcome(OutcomeKind.PERMANENT, "ResourceNotFoundException", "no input")
    (decision,) = decide((head(7, "a"),), {"id7": outcome}, 10.0, POLICY)
    assert decision == Pause(7, "a", 1, 10.0, "ResourceNotFoundException", "no input")


def test_retry_stop_turns_a_forever_transient_message_into_a_pause() -> None:
    outcome = Outcome(OutcomeKind.TRANSIENT, "ThrottlingException", "slow down")
    (decision,) = decide(
        (head(7, "a", attempts=3, first_attempt_at=1.0),), {"id7": outcome}, 10.0, POLICY
    )
    assert isinstance(decision, Pause)
    assert decision.error_code == "RetriesExhausted"
    assert "4 attempts" in decision.error_text


def test_stop_after_delay_reads_the_age_kept_in_the_store() -> None:
    policy = RetryPolicy(wait=tenacity.wait_fixed(1), stop=tenacity.stop_after_delay(60))
    outcome = Outcome(OutcomeKind.TRANSIENT, "InternalFailureException")
    tried: dict[str, Any] = {
        "attempts": 5,
        "retry_age": 58.0,
        "last_attempt_at": 158.0,
        "retry_wait": 1.0,
    }
    young = decide((head(1, "a", **tried),), {"id1": outcome}, 159.0, policy)
    old = decide((head(1, "a", **tried),), {"id1": outcome}, 160.0, policy)
    assert isinstance(young[0], Retry) and young[0].retry_age == 59.0
    assert isinstance(old[0], Pause) and old[0].error_code == "RetriesExhausted"


def test_a_clock_jumping_forward_ages_a_message_by_one_bounded_step_only() -> None:
    policy = RetryPolicy(
        wait=tenacity.wait_fixed(5), stop=tenacity.stop_after_delay(3600), step_slack=11.0
    )
    outcome = Outcome(OutcomeKind.TRANSIENT, "InternalFailureException")
    tried: dict[str, Any] = {
        "attempts": 3,
        "retry_age": 100.0,
        "last_attempt_at": 1_000.0,
        "retry_wait": 5.0,
    }
    two_hours_later = 1_000.0 + 7_200.0
    (decision,) = decide((head(1, "a", **tried),), {"id1": outcome}, two_hours_later, policy)
    assert isinstance(decision, Retry)
    assert decision.retry_age == 100.0 + 5.0 + 11.0
    assert decision.next_attempt_at == two_hours_later + 5.0


def test_a_clock_jumping_back_adds_no_age() -> None:
    policy = RetryPolicy(wait=tenacity.wait_fixed(5), stop=tenacity.stop_after_delay(60))
    outcome = Outcome(OutcomeKind.TRANSIENT, "InternalFailureException")
    tried: dict[str, Any] = {
        "attempts": 3,
        "retry_age": 30.0,
        "last_attempt_at": 10_000.0,
        "retry_wait": 5.0,
    }
    (decision,) = decide((head(1, "a", **tried),), {"id1": outcome}, 50.0, policy)
    assert isinstance(decision, Retry) and decision.retry_age == 30.0


def test_under_the_dead_letter_policy_a_permanent_failure_leaves_the_lane() -> None:
    policy = RetryPolicy(
        wait=tenacity.wait_fixed(1), stop=tenacity.stop_after_attempt(2), dead_letter=True
    )
    bad = Outcome(OutcomeKind.PERMANENT, "InvalidRequestException", "bad payload")
    flaky = Outcome(OutcomeKind.TRANSIENT, "ThrottlingException")
    decisions = decide(
        (head(1, "a"), head(2, "b", attempts=1, last_attempt_at=9.0)),
        {"id1": bad, "id2": flaky},
        10.0,
        policy,
    )
    assert decisions == [
        MoveToDeadLetters(1, "a", 1, 10.0, "InvalidRequestException", "bad payload"),
        MoveToDeadLetters(
            2,
            "b",
            2,
            10.0,
            "RetriesExhausted",
            "gave up after 2 attempts; last error ThrottlingException: ",
        ),
    ]


def test_isolation_resends_each_message_alone_at_once() -> None:
    outcome = Outcome(OutcomeKind.ISOLATE, "InvalidRequestException")
    decisions = decide((head(1, "a"), head(2, "b")), {"id1": outcome, "id2": outcome}, 5.0, POLICY)
    assert all(isinstance(d, Retry) and d.solo and d.next_attempt_at == 5.0 for d in decisions)


def test_credential_failures_are_due_again_behind_the_senders_hold_and_never_give_up() -> None:
    outcome = Outcome(OutcomeKind.HALT, "AccessDeniedException", whole_request=True)
    (decision,) = decide(
        (head(1, "a", attempts=99, first_attempt_at=0.0),), {"id1": outcome}, 1000.0, POLICY
    )
    assert isinstance(decision, Retry)
    assert (decision.attempts, decision.next_attempt_at) == (99, 1000.0)


def test_a_request_the_endpoint_failed_whole_is_due_again_behind_the_endpoints_hold() -> None:
    down = Outcome(OutcomeKind.TRANSIENT, "ConnectionClosedError", whole_request=True)
    (decision,) = decide((head(1, "a", attempts=2),), {"id1": down}, 1000.0, POLICY)
    assert isinstance(decision, Retry)
    assert (decision.attempts, decision.next_attempt_at, decision.retry_wait) == (3, 1000.0, 0.0)


def test_credential_refusals_are_not_attempts_so_they_never_bring_a_message_to_its_stop() -> None:
    one_more_and_stop = RetryPolicy(
        wait=tenacity.wait_fixed(1), stop=tenacity.stop_after_attempt(2)
    )
    refused = Outcome(OutcomeKind.HALT, "ExpiredTokenException")
    throttled = Outcome(OutcomeKind.TRANSIENT, "ThrottlingException")
    message = head(1, "a")
    for now in (10.0, 20.0, 30.0):
        (halted,) = decide((message,), {"id1": refused}, now, one_more_and_stop)
        assert isinstance(halted, Retry) and (halted.attempts, halted.retry_age) == (0, 0.0)
    (first,) = decide((message,), {"id1": throttled}, 40.0, one_more_and_stop)
    assert isinstance(first, Retry) and first.attempts == 1


def test_wait_strategies_can_read_the_error_code() -> None:
    slow_for_throttling = tenacity.wait_exception(
        lambda error: 30 if cast(AttemptFailed, error).error_code == "ThrottlingException" else 1
    )
    policy = RetryPolicy(wait=slow_for_throttling, stop=tenacity.stop_never)
    throttled = decide(
        (head(1, "a"),), {"id1": Outcome(OutcomeKind.TRANSIENT, "ThrottlingException")}, 0.0, policy
    )
    assert isinstance(throttled[0], Retry)
    assert throttled[0].next_attempt_at == 30.0


@given(
    sizes=st.lists(st.integers(min_value=0, max_value=1024), max_size=60),
    solo=st.sets(st.integers(min_value=0, max_value=59)),
    max_messages=st.integers(min_value=1, max_value=10),
    max_batches=st.integers(min_value=1, max_value=8),
)
def test_any_plan_keeps_lanes_apart_and_every_limit(
    sizes: list[int], solo: set[int], max_messages: int, max_batches: int
) -> None:
    heads = [head(i, f"lane{i}", size=size, solo=i in solo) for i, size in enumerate(sizes)]
    batches = plan(heads, max_messages=max_messages, max_batches=max_batches)
    placed = [h.seq for b in batches for h in b]
    assert len(placed) == len(set(placed))
    assert len(batches) <= max_batches
    for batch in batches:
        assert 1 <= len(batch) <= max_messages
        assert len({h.lane for h in batch}) == len(batch)
        assert sum(len(h.message.payload) for h in batch) <= 1024
        assert len(batch) == 1 or not any(h.solo for h in batch)
    # A head is left out only when every request was taken: nothing is held back needlessly.
    if len(placed) < len(heads):
        assert len(batches) == max_batches
