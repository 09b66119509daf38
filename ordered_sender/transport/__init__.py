"""The seam between the sender and IoT Events: one method, ``send``.

A Transport turns a batch of messages into a BatchResponse and never raises for what the service
or the network did: every such fault comes back as a RequestError value, so that outcomes.py is the
one place where responses become decisions. ``IotEventsTransport`` (boto3) is the real one; tests
hand in their own.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ordered_sender.message import Message


class RequestErrorKind(enum.Enum):
    """Why a whole request failed."""

    SERVICE = "service"
    """The service answered with an error status (its code and status are kept)."""
    CONNECTION = "connection"
    """No answer: refused, reset or closed connection, read timeout. Outcome unknown."""
    CREDENTIALS = "credentials"
    """No usable credentials, or access denied: nothing can be sent until that is fixed."""


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
    def send(self, messages: Sequence[Message]) -> BatchResponse:
        """Send up to 10 messages in one BatchPutMessage request and report what came back."""
        ...


__all__ = [
    "BatchResponse",
    "EntryError",
    "RequestError",
    "RequestErrorKind",
    "Transport",
]
