"""The scheduler: lane heads in, batches and decisions out. Pure: time is an argument, no I/O.

Two jobs:
- ``plan_batches`` packs ready lane heads into BatchPutMessage requests. Heads are one per lane, so
  no request can carry two messages of one lane; a request holds up to ``max_messages`` heads of
  distinct lanes within the payload byte limit; a message that must be isolated goes alone.
- ``decide`` turns the outcome of a request into what the store must record: delivered, retry at a
  time from the tenacity wait strategy, or pause the lane. The attempt count and the time of the
  first attempt come from the store, so the retry policy sees the same history after a restart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import tenacity

from ordered_sender.outcomes import Outcome, OutcomeKind
from ordered_sender.store import Decision, Delivered, Pause, Retry, StoredMessage

Batch = tuple[StoredMessage, ...]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """tenacity strategies: ``wait`` gives the backoff, ``stop`` says when to give up."""

    wait: tenacity.wait.wait_base
    stop: tenacity.stop.stop_base


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


def decide(
    batch: Batch, outcomes: Mapping[str, Outcome], now: float, policy: RetryPolicy
) -> list[Decision]:
    """What to record for each message of a request, given the outcomes of ``classify``."""
    decisions: list[Decision] = []
    for head in batch:
        outcome = outcomes[head.message.message_id]
        if outcome.kind is OutcomeKind.DELIVERED:
            decisions.append(Delivered(head.seq))
            continue
        attempts = head.attempts + 1
        first_attempt_at = now if head.first_attempt_at is None else head.first_attempt_at
        code = outcome.error_code or outcome.kind.value
        text = outcome.error_text or ""
        state = retry_state(attempts, first_attempt_at, now, outcome)
        if outcome.kind is OutcomeKind.PERMANENT:
            decisions.append(Pause(head.seq, head.lane, attempts, first_attempt_at, code, text))
        elif outcome.kind is OutcomeKind.ISOLATE:
            decisions.append(
                Retry(head.seq, attempts, first_attempt_at, now, code, text, solo=True)
            )
        elif outcome.kind is OutcomeKind.HALT:
            # Missing or refused credentials are nobody's message's fault: back off, never give up.
            next_at = now + float(policy.wait(state))
            decisions.append(
                Retry(head.seq, attempts, first_attempt_at, next_at, code, text, solo=head.solo)
            )
        elif policy.stop(state):
            decisions.append(
                Pause(
                    head.seq,
                    head.lane,
                    attempts,
                    first_attempt_at,
                    "RetriesExhausted",
                    f"gave up after {attempts} attempts; last error {code}: {text}",
                )
            )
        else:
            next_at = now + float(policy.wait(state))
            decisions.append(
                Retry(head.seq, attempts, first_attempt_at, next_at, code, text, solo=head.solo)
            )
    return decisions


def retry_state(
    attempts: int, first_attempt_at: float, now: float, outcome: Outcome
) -> tenacity.RetryCallState:
    """A tenacity RetryCallState rebuilt from what the store keeps, for wait and stop strategies."""
    state = tenacity.RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    state.attempt_number = attempts
    state.start_time = first_attempt_at
    state.outcome_timestamp = now
    future = tenacity.Future(attempts)
    future.set_exception(AttemptFailed(outcome.error_code, outcome.error_text))
    state.outcome = future
    return state
