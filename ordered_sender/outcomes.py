"""What each message's fate is after one BatchPutMessage call: the single place responses are read.

| what came back                                        | outcome                                 |
|-------------------------------------------------------|-----------------------------------------|
| 200, no entry for the messageId                       | DELIVERED                               |
| entry Throttling / ServiceUnavailable / Internal      | TRANSIENT (same id again after backoff) |
| request Throttling / ServiceUnavailable / Internal,   | TRANSIENT, outcome unknown (same ids)   |
|   or status 429 / 5xx, connection fault, timeout      |                                         |
| an answer that is not IoT Events' API (UNEXPECTED)    | TRANSIENT, outcome unknown; its code is |
|                                                       |   kept so the sender can say so loudly  |
| entry ResourceNotFound / InvalidRequest               | PERMANENT (failure policy)              |
| request 400 (or other 4xx) or refused by the client   | ISOLATE (resend each alone, then judge) |
|   before sending (INVALID_REQUEST), several messages  |                                         |
| the same with one message                             | PERMANENT                               |
| credentials missing, expired, or access denied        | HALT (stop sending, keep all, retry)    |

HTTP 200 does not mean success: a message succeeded only if no error entry names it. A TRANSIENT
whole-request failure (``whole_request``) is the endpoint's, not the message's: the sender holds
every lane for it (health.py) instead of backing each lane off alone. Pure: no I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from ordered_sender.transport import BatchResponse, RequestErrorKind

TRANSIENT_ENTRY_CODES = frozenset(
    {"ThrottlingException", "ServiceUnavailableException", "InternalFailureException"}
)
"""The transient values of the service model's ErrorCode enum (BatchPutMessageErrorEntries)."""
TRANSIENT_REQUEST_CODES = frozenset(
    {"ThrottlingException", "ServiceUnavailableException", "InternalFailureException"}
)
"""The error shapes the service model lists for BatchPutMessage, but InvalidRequestException."""
TRANSIENT_REQUEST_STATUSES = frozenset({429, 500, 502, 503, 504})


class OutcomeKind(enum.Enum):
    DELIVERED = "delivered"
    TRANSIENT = "transient"
    PERMANENT = "permanent"
    ISOLATE = "isolate"
    HALT = "halt"


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: OutcomeKind
    error_code: str | None = None
    error_text: str | None = None
    whole_request: bool = False
    """The request failed as a whole (no answer for any message of it)."""


DELIVERED = Outcome(OutcomeKind.DELIVERED)

_OUTCOME_UNKNOWN = frozenset({RequestErrorKind.CONNECTION, RequestErrorKind.UNEXPECTED})
"""Request errors after which the messages may or may not have been processed."""


def classify(response: BatchResponse, message_ids: Sequence[str]) -> dict[str, Outcome]:
    """The outcome of every message of a request, keyed by messageId."""
    error = response.request_error
    if error is not None:
        if error.kind is RequestErrorKind.CREDENTIALS:
            kind = OutcomeKind.HALT
        elif error.kind in _OUTCOME_UNKNOWN or (
            error.kind is RequestErrorKind.SERVICE
            and _is_transient_request(error.status, error.code)
        ):
            kind = OutcomeKind.TRANSIENT
        elif len(message_ids) > 1:
            kind = OutcomeKind.ISOLATE
        else:
            kind = OutcomeKind.PERMANENT
        outcome = Outcome(kind, error.code, error.text, whole_request=True)
        return dict.fromkeys(message_ids, outcome)

    outcomes = dict.fromkeys(message_ids, DELIVERED)
    for entry in response.entry_errors:
        if entry.message_id not in outcomes:
            # An entry for an id we did not send cannot be acted on; it must not mark ours delivered
            # either, which it does not, since only named ids change.
            continue
        kind = (
            OutcomeKind.TRANSIENT if entry.code in TRANSIENT_ENTRY_CODES else OutcomeKind.PERMANENT
        )
        outcomes[entry.message_id] = Outcome(kind, entry.code, entry.text)
    return outcomes


def endpoint_failed(outcomes: dict[str, Outcome]) -> bool:
    """The endpoint failed the request as a whole, transiently: down, overloaded, throttling the
    account, or not answering as IoT Events."""
    return any(o.whole_request and o.kind is OutcomeKind.TRANSIENT for o in outcomes.values())


def _is_transient_request(status: int | None, code: str) -> bool:
    if code in TRANSIENT_REQUEST_CODES:
        return True
    return status is not None and (status in TRANSIENT_REQUEST_STATUSES or status >= 500)
