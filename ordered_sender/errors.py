"""Every exception ordered_sender raises, in one tree.

    OrderedSenderError
     ├── InvalidMessage (also ValueError)     put() refused a message; nothing was stored
     ├── InvalidConfig (also ValueError)      a SenderConfig field or lane function is wrong
     ├── SenderClosed (also RuntimeError)     put() after close()
     ├── OutboxInUse (also RuntimeError)      another live sender holds the outbox file
     ├── NotAnOutbox (also ValueError)        the file opened as an outbox is something else:
     │                                        missing, not SQLite, another application's
     │                                        database, or an outbox of a newer version
     ├── StoreError                           the outbox file cannot be read or written: disk
     │                                        full, I/O error, read-only, corrupt, deleted
     ├── OutboxFull                           put() with when_full="raise" (or after its
     │                                        timeout) on an outbox at its pending limit
     ├── NothingPending (also LookupError)    pause(lane) of a lane with no pending messages
     └── DeliveryError                        result(): it will not arrive by itself
          ├── LanePaused                      its lane stopped on a permanent failure; resume(lane)
          └── DeliveryFailed                  it failed for good and was dead-lettered;
                                              redrive(message_id) puts it back

Errors of the libraries below are translated in exactly one place each: botocore's in the transport
(into outcomes, never raised), sqlite3's in the SQLite store and psycopg's in the PostgreSQL store
(store/postgres_errors.py, by SQLSTATE; into StoreError or NotAnOutbox, the psycopg error kept as
``__cause__``). They do not escape to the caller as themselves, not even from
``put_many(connection=...)`` on the caller's own connection. On a PostgreSQL outbox, StoreError
and NotAnOutbox speak of the database (server unreachable or gone, disk full, permission
denied, a schema of another version) and name it by its URL without the password.
"""

from __future__ import annotations


class OrderedSenderError(Exception):
    """Base class of every error raised by ordered_sender."""


class InvalidMessage(OrderedSenderError, ValueError):
    """A message given to put() breaks a documented rule; nothing of the call was stored.

    ``field`` names the offending field (``input_name``, ``message_id``, ``payload``,
    ``timestamp_ms`` or a lane attribute) and ``value`` holds what was given.
    """

    def __init__(self, field: str, value: object, problem: str) -> None:
        self.field = field
        self.value = value
        self.problem = problem
        super().__init__(f"{field}={_shown(value)}: {problem}")


class InvalidConfig(OrderedSenderError, ValueError):
    """A configuration field holds a value it cannot have."""

    def __init__(self, field: str, value: object, problem: str) -> None:
        self.field = field
        self.value = value
        self.problem = problem
        super().__init__(f"SenderConfig.{field}={value!r}: {problem}")


class SenderClosed(OrderedSenderError, RuntimeError):
    """The sender was closed; open a new OrderedSender on the same file to go on."""


class OutboxInUse(OrderedSenderError, RuntimeError):
    """Another OrderedSender (in this or another process) is delivering from the same outbox.

    Two senders on one outbox would each send a lane's head, breaking one-in-flight-per-lane.
    """


class NotAnOutbox(OrderedSenderError, ValueError):
    """A file opened as an existing outbox is missing, or is not an ordered_sender outbox."""


class StoreError(OrderedSenderError):
    """The outbox file cannot be read or written; nothing of the failed call was stored.

    ``path`` is the outbox file and ``problem`` what went wrong (for example "the disk is full").
    """

    def __init__(self, path: object, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"outbox {path}: {problem}")


class OutboxFull(OrderedSenderError):
    """The outbox holds its configured limit of pending messages or bytes; nothing was stored.

    Raised by put() when ``SenderConfig.when_full`` is "raise", or when a blocking put's
    ``timeout`` passed before delivery made room.
    """


class NothingPending(OrderedSenderError, LookupError):
    """``pause(lane)`` of a lane with no pending messages: a lane exists only while it holds
    messages, so there is nothing to hold; ``lane`` names it."""

    def __init__(self, lane: str) -> None:
        self.lane = lane
        super().__init__(
            f"lane {lane!r} has no pending messages, so there is nothing to pause; a lane can "
            "be paused only while messages wait in it"
        )


class DeliveryError(OrderedSenderError):
    """The message cannot reach IoT Events without someone acting on it."""

    def __init__(self, message_id: str, lane: str, reason: str) -> None:
        self.message_id = message_id
        self.lane = lane
        self.reason = reason
        super().__init__(f"message {message_id} in lane {lane!r}: {reason}")


class LanePaused(DeliveryError):
    """The message's lane is paused after a permanent failure; ``sender.resume(lane)`` retries."""


class DeliveryFailed(DeliveryError):
    """The message failed for good and was moved to the dead letters (``on_permanent_failure=
    "dead_letter"``); ``error_code`` is why. ``redrive(message_id)`` puts it back in its lane."""

    def __init__(self, message_id: str, lane: str, error_code: str, reason: str) -> None:
        self.error_code = error_code
        super().__init__(message_id, lane, reason)


def _shown(value: object, limit: int = 80) -> str:
    """The value as the error shows it: long values are cut so an error never carries a payload."""
    try:
        text = repr(value)
    except (RecursionError, ValueError):
        # Too deep to print, or an int too long to convert: its type says enough.
        return f"<{type(value).__name__}>"
    if len(text) > limit:
        return f"{text[:limit]}... ({len(text)} characters)"
    return text
