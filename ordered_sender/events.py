"""The log events of delivery: one structlog event per state change, never a payload.

Events: ``message.enqueued``, ``batch.sent``, ``message.delivered``, ``message.retry_scheduled``,
``lane.paused``, ``message.dead_lettered``, ``lane.resumed``, ``message.redriven``,
``message.dropped``, ``sender.halted``, ``outbox.unavailable`` / ``outbox.available`` (the store
cannot record, then can again), ``sender.stopped`` (its outbox file was deleted or replaced),
``clock.moved_back``, ``transport.unexpected_error``, ``sender.started``, ``sender.closed``,
``lease.lost`` / ``lease.outcome_refused`` (a PostgreSQL outbox: another worker took a lane over
from this one, whose outcome for it is not recorded). Each message event carries lane,
input_name, message_id, seq, attempt and latency_ms; failures add error_code. The library never
configures logging: the application decides where events go. When it has configured structlog,
events go through that pipeline; when it has not, they go to the
standard library logger ``ordered_sender``, so that, like any well-behaved library, it prints
nothing below WARNING unless the application asks for it (structlog's unconfigured default would
print every event to standard output).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import structlog

from ordered_sender.scheduler import Batch
from ordered_sender.store import Decision, Delivered, MoveToDeadLetters, Retry
from ordered_sender.transport import BatchResponse

_STDLIB_LOGGER = logging.getLogger("ordered_sender")
"""The same object for the life of the process: looked up once, not at every put."""

_UNCONFIGURED = structlog.wrap_logger(
    _STDLIB_LOGGER,
    processors=[
        # Dropped before anything is rendered when the stdlib logger would not write it: a
        # debug event per message must cost next to nothing when nobody listens.
        structlog.stdlib.filter_by_level,
        structlog.processors.KeyValueRenderer(key_order=["event"], sort_keys=True),
    ],
    wrapper_class=structlog.stdlib.BoundLogger,
)


class _EventLog:
    """The application's structlog pipeline when there is one, else stdlib logging."""

    def __getattr__(self, level: str) -> Any:
        if structlog.is_configured():
            return getattr(structlog.get_logger("ordered_sender"), level)
        return getattr(_UNCONFIGURED, level)


log = _EventLog()


def debug_enabled() -> bool:
    """False when debug events would surely be dropped: unconfigured, and the stdlib logger is
    not set to debug. Callers skip building per-message events then (they cost more than the
    SQL that delivers the message)."""
    if structlog.is_configured():
        return True
    return _STDLIB_LOGGER.isEnabledFor(logging.DEBUG)


def log_request(
    batch: Batch,
    response: BatchResponse,
    decisions: Sequence[Decision],
    latency_ms: float,
    now: float,
) -> None:
    error = response.request_error
    if response.request_error is None and not response.entry_errors and not debug_enabled():
        return  # all delivered: only debug events, which nobody would see
    log.debug(
        "batch.sent",
        messages=len(batch),
        lanes=len({head.lane for head in batch}),
        error_code=None if error is None else error.code,
        entry_errors=len(response.entry_errors),
        latency_ms=latency_ms,
    )
    for head, decision in zip(batch, decisions, strict=True):
        fields = {
            "lane": head.lane,
            "input_name": head.message.input_name,
            "message_id": head.message.message_id,
            "seq": head.seq,
            "attempt": head.attempts + 1,
            "latency_ms": latency_ms,
        }
        if isinstance(decision, Delivered):
            log.debug("message.delivered", **fields)
        elif isinstance(decision, Retry):
            log.info(
                "message.retry_scheduled",
                **fields,
                error_code=decision.error_code,
                solo=decision.solo,
                retry_in_ms=round((decision.next_attempt_at - now) * 1000, 1),
            )
        elif isinstance(decision, MoveToDeadLetters):
            log.warning(
                "message.dead_lettered",
                **fields,
                error_code=decision.error_code,
                error_text=decision.error_text,
            )
        else:
            log.warning(
                "lane.paused",
                **fields,
                error_code=decision.error_code,
                error_text=decision.error_text,
            )
