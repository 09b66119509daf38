"""The seam between the sender and IoT Events: one method, ``send``.

A Transport turns a batch of messages into a BatchResponse. Every fault it knows (what the service
answered, what the network did, missing credentials) comes back as a RequestError value, so that
outcomes.py is the one place where responses become decisions. ``IotEventsTransport`` (boto3) is
the real one, with its exception table; tests hand in their own.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from ordered_sender.message import Message


class RequestErrorKind(enum.Enum):
    """Why a whole request failed."""

    SERVICE = "service"
    """The service answered with an error status (its code and status are kept)."""
    CONNECTION = "connection"
    """No answer: refused, reset or closed connection, read timeout. Outcome unknown."""
    CREDENTIALS = "credentials"
    """No usable credentials, or access denied: nothing can be sent until that is fixed."""
    UNEXPECTED = "unexpected"
    """The endpoint answered something that is not IoT Events' API (an HTML page, a body that
    does not parse, an error without an AWS error code). Outcome unknown; likely a wrong
    ``endpoint_url`` or a proxy in the way, so the sender says so loudly."""
    INVALID_REQUEST = "invalid_request"
    """The client refused to send the request: a message does not fit the service model (a bug of
    ours, or a message the model rejects). Nothing was sent; sending it again cannot help."""


@dataclass(frozen=True, slots=True)
class RequestError:
    kind: RequestErrorKind
    code: str
    text: str
    status: int | None = None


@dataclass(frozen=True, slots=True)
class EntryError:
    """One entry of BatchPutMessageErrorEntries: that message was not processed."""

    message_id: str
    code: str
    text: str


@dataclass(frozen=True, slots=True)
class BatchResponse:
    """What one BatchPutMessage call came back with: entry errors, or a whole-request error."""

    entry_errors: tuple[EntryError, ...] = ()
    request_error: RequestError | None = None


class Transport(Protocol):
    """Sends one BatchPutMessage request.

    Contract of ``send``: every fault the transport knows how to read returns a BatchResponse
    whose ``request_error`` says which kind it was; ``send`` never turns an exception it does not
    know into a RequestError. Anything else (a bug, or a fault of the library below that nobody
    mapped) propagates unchanged: the sender catches it, logs it at error level with its
    traceback and backs off before trying again. A catch-all here would instead hide the bug
    behind an endless, quiet retry.
    """

    def send(self, messages: Sequence[Message]) -> BatchResponse:
        """Send up to 10 messages in one BatchPutMessage request and report what came back."""
        ...


_Value = TypeVar("_Value")


def mapped_by_class(table: Mapping[Any, _Value], error_type: type[BaseException]) -> _Value | None:
    """What an exception table (exception classes as keys) gives this class: its nearest ancestor
    in the table (by MRO), so a subclass resolves as its mapped base does; None when no ancestor
    is mapped."""
    for ancestor in error_type.__mro__:
        value = table.get(ancestor)
        if value is not None:
            return value
    return None


__all__ = [
    "BatchResponse",
    "EntryError",
    "RequestError",
    "RequestErrorKind",
    "Transport",
    "mapped_by_class",
]
