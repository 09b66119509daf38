"""The scheduler: lane heads in, batches and decisions out. Pure: time is an argument, no I/O.

Two jobs:
- ``plan_batches`` packs ready lane heads into BatchPutMessage requests. Heads are one per lane, so
  no request can carry two messages of one lane; a request holds up to ``max_messages`` heads of
  distinct lanes within the payload byte limit; a message that must be isolated goes alone.
- ``decide`` turns the outcome of a request into what the store must record: delivered, retry at a
  time from the tenacity wait strategy, or, for a permanent failure, what the failure policy says
  (pause the lane, or move the message to the dead letters). The attempt count and the age come
  from the store, so the retry policy sees the same history after a restart. Each decision is one
  of the lane transitions of ``lane_state`` (DELIVERED, RETRY, PAUSE, DEAD_LETTER).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import tenacity

from ordered_sender.outcomes import Outcome, OutcomeKind
from ordered_sender.store import (
    Decision,
    Delivered,
    MoveToDeadLetters,
    Pause,
    Retry,
    StoredMessage,
)

Batch = tuple[StoredMessage, ...]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """tenacity strategies: ``wait`` gives the backoff, ``stop`` says when to give up;
    ``dead_letter`` chooses the failure policy for a message that failed for good."""

    wait: tenacity.wait.wait_base
    stop: tenacity.stop.stop_base
    dead_letter: bool = False
    lane_spacing: float = 0.0
    """Pacing: seconds between one message of a lane being acknowledged and the next being sent
    (1 / ``max_messages_per_second_per_lane``; 0 for no pacing)."""
    step_slack: float = 60.0
    """Longest time, beyond its backoff, that one retry step may add to a message's age: the age
    grows by the time between attempts, but never by more than backoff + slack, so a clock
    jumping forward (or a sender stopped for a day) does not exhaust ``stop_after_delay``."""


class AttemptFailed(Exception):
    """The failure a tenacity strategy sees as the outcome of an attempt (for ``wait_exception``,
    ``retry_if_exception`` and friends)."""

    def __init__(self, error_code: str | None, error_text: str | None) -> None:
        self.error_code = error_code
        self.error_text = error_text
        super().__init__(error_code or "unknown")


def plan_batches(
    heads: Sequence[StoredMessage],
    *,
    max_messages: int,
    max_payload_bytes: int,
    max_batches: int,
) -> list[Batch]:
    """Pack heads (one per lane, oldest first) into at most ``max_batches`` requests."""
    batches: list[list[StoredMessage]] = []
    sizes: list[int] = []
    lanes_taken: set[str] = set()
    for head in heads:
        if head.lane in lanes_taken:
            raise ValueError(f"two heads of lane {head.lane!r} were offered to the scheduler")
        size = len(head.message.payload)
        target = None
        if not head.solo:
            for index, batch in enumerate(batches):
                if (
                    not batch[0].solo
                    and len(batch) < max_messages
                    and sizes[index] + size <= max_payload_bytes
                ):
                    target = index
                    break
        if target is None:
            if len(batches) == max_batches:
                continue
            batches.append([])
            sizes.append(0)
            target = len(batches) - 1
        batches[target].append(head)
        sizes[target] += size
        lanes_taken.add(head.lane)
    return [tuple(batch) for batch in batches]


def is_partial(batch: Batch, *, max_messages: int, max_payload_bytes: int) -> bool:
    """A request that had room for more: fewer than ``max_messages`` messages holding less than
    half of ``max_payload_bytes``. A solo request (isolating a refused message) never is."""
    if not batch or batch[0].solo or len(batch) >= max_messages:
        return False
    return 2 * sum(len(head.message.payload) for head in batch) < max_payload_bytes


def hold_partial(
    batches: Sequence[Batch], *, partial_in_flight: int, max_messages: int, max_payload_bytes: int
) -> tuple[list[Batch], bool]:
    """The batches to send now, and whether a partial one was held back.

    At most one partial request is in flight at a time (as Nagle's algorithm holds small segments
    while one is unacknowledged): when messages come one by one faster than requests return,
    those due meanwhile ride together in the next request instead of costing a request each,
    and a lone message still goes at once. Full requests are never held."""
    sending: list[Batch] = []
    held = False
    for batch in batches:
        partial = is_partial(batch, max_messages=max_messages, max_payload_bytes=max_payload_bytes)
        if partial and partial_in_flight > 0:
            held = True
            continue
        sending.append(batch)
        partial_in_flight += partial
    return sending, held


def dispatcher_wait(
    *, free_workers: int, next_due: float | None, now: float, halted_until: float, poll: float
) -> float:
    """How long the dispatcher sleeps before it looks at the outbox again, unless woken (by a
    put, a finished request, a resume or close).

    With every worker busy, nothing can be sent before one finishes, and finishing wakes it: it
    waits the whole poll, never a busy spin. Otherwise it waits until the next head is due (not
    before a credentials halt ends), at most the poll, at least a millisecond.
    """
    if free_workers <= 0 or next_due is None:
        return poll
    return max(min(poll, max(next_due, halted_until) - now), 0.001)


def decide(
    batch: Batch, outcomes: Mapping[str, Outcome], now: float, policy: RetryPolicy
) -> list[Decision]:
    """What to record for each message of a request, given the outcomes of ``classify``.

    A refusal of the credentials, or a request the endpoint failed as a whole, is not the
    message's fault: the sender holds every lane for it (health.py), so the message is due again
    at once, behind that hold, instead of waiting out a backoff of its own. A refusal of the
    credentials is not even an attempt: it never brings a message to its ``retry_stop``.
    """
    return [_decide_one(head, outcomes[head.message.message_id], now, policy) for head in batch]


def retry_age(head: StoredMessage, now: float, policy: RetryPolicy) -> float:
    """The message's time spent trying, after this attempt; each step is bounded (see
    ``RetryPolicy.step_slack``) and a clock that went back adds nothing."""
    if head.last_attempt_at is None:
        return head.retry_age
    step = min(max(now - head.last_attempt_at, 0.0), head.retry_wait + policy.step_slack)
    return head.retry_age + step


def _decide_one(head: StoredMessage, outcome: Outcome, now: float, policy: RetryPolicy) -> Decision:
    if outcome.kind is OutcomeKind.DELIVERED:
        return Delivered(head.seq, now + policy.lane_spacing)
    if outcome.kind is OutcomeKind.HALT:
        return Retry(
            head.seq,
            head.attempts,
            now if head.first_attempt_at is None else head.first_attempt_at,
            now,
            outcome.error_code or outcome.kind.value,
            outcome.error_text or "",
            solo=head.solo,
            retry_age=head.retry_age,
        )
    attempts = head.attempts + 1
    first_attempt_at = now if head.first_attempt_at is None else head.first_attempt_at
    age = retry_age(head, now, policy)
    code = outcome.error_code or outcome.kind.value
    text = outcome.error_text or ""
    state = retry_state(attempts, age, now, outcome)

    def retry(solo: bool) -> Retry:
        endpoint_held = outcome.kind is OutcomeKind.ISOLATE or outcome.whole_request
        wait = 0.0 if endpoint_held else max(float(policy.wait(state)), 0.0)
        return Retry(
            head.seq,
            attempts,
            first_attempt_at,
            now + wait,
            code,
            text,
            solo=solo,
            retry_wait=wait,
            retry_age=age,
        )

    def failed(error_code: str, error_text: str) -> Decision:
        if policy.dead_letter:
            return MoveToDeadLetters(
                head.seq, head.lane, attempts, first_attempt_at, error_code, error_text
            )
        return Pause(head.seq, head.lane, attempts, first_attempt_at, error_code, error_text, age)

    if outcome.kind is OutcomeKind.PERMANENT:
        return failed(code, text)
    if outcome.kind is OutcomeKind.ISOLATE:
        return retry(solo=True)
    if policy.stop(state):
        return failed(
            "RetriesExhausted", f"gave up after {attempts} attempts; last error {code}: {text}"
        )
    return retry(solo=head.solo)


def retry_state(attempts: int, age: float, now: float, outcome: Outcome) -> tenacity.RetryCallState:
    """A tenacity RetryCallState rebuilt from what the store keeps, for wait and stop strategies:
    ``seconds_since_start`` is the message's age."""
    state = tenacity.RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    state.attempt_number = attempts
    state.start_time = now - age
    state.outcome_timestamp = now
    future = tenacity.Future(attempts)
    future.set_exception(AttemptFailed(outcome.error_code, outcome.error_text))
    state.outcome = future
    return state
