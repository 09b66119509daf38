"""The log events of delivery: one structlog event per state change, never a payload.

Events: ``message.enqueued``, ``batch.sent``, ``message.delivered``, ``message.retry_scheduled``,
``lane.paused``, ``lane.resumed``, ``sender.halted``, ``sender.started``, ``sender.closed``. Each
message event carries lane, input_name, message_id, seq, attempt and latency_ms; failures add
error_code. The library never configures structlog: the application decides where events go.
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog

from ordered_sender.scheduler import Batch
from ordered_sender.store import Delivered, Pause, Retry
from ordered_sender.transport import BatchResponse

log = structlog.get_logger("ordered_sender")


def log_request(
    batch: Batch,
    response: BatchResponse,
    decisions: Sequence[Delivered | Retry | Pause],
    latency_ms: float,
    now: float,
) -> None:
    error = response.request_error
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
        else:
            log.warning(
                "lane.paused",
                **fields,
                error_code=decision.error_code,
                error_text=decision.error_text,
            )
