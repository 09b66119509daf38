"""Limits and patterns that AWS IoT Events documents for BatchPutMessage.

Both sides of the wire read these: the library validates what it is given with them, and the
local endpoint enforces them the way the service does. Nothing here does I/O.
"""

from __future__ import annotations

import re

MAX_MESSAGES_PER_REQUEST = 10
"""BatchPutMessage accepts 1 to 10 messages in one request."""

MAX_PAYLOAD_BYTES_PER_REQUEST = 1024
"""Documented payload quota of one BatchPutMessage request (1 KiB)."""


def _whole_string(documented: str) -> re.Pattern[str]:
    """AWS's ``^...$`` pattern, checked against the whole string as AWS checks it.

    Python's ``$`` also matches before a trailing newline, so ``re.match("^a$", "a\\n")``
    passes; ``\\A...\\Z`` anchor at the true ends, whichever of match, search or fullmatch a
    caller uses. The classes are spelled-out ASCII ranges, so no other character passes.
    """
    return re.compile(rf"\A(?:{documented.removeprefix('^').removesuffix('$')})\Z")


MESSAGE_ID_MAX_LENGTH = 64
MESSAGE_ID_DOCUMENTED_PATTERN = "^[a-zA-Z0-9_-]+$"
MESSAGE_ID_PATTERN = _whole_string(MESSAGE_ID_DOCUMENTED_PATTERN)

INPUT_NAME_MAX_LENGTH = 128
INPUT_NAME_DOCUMENTED_PATTERN = "^[a-zA-Z0-9][a-zA-Z0-9_.-]*$"
INPUT_NAME_PATTERN = _whole_string(INPUT_NAME_DOCUMENTED_PATTERN)

TIMESTAMP_MS_MIN = 1
TIMESTAMP_MS_MAX = 2**63 - 1
"""``timestamp.timeInMillis`` is a long (64-bit signed) of at least 1: Unix epoch milliseconds."""

DEDUPLICATION_WINDOW_SECONDS = 300.0
"""IoT Events ignores a messageId it has already seen within the last five minutes."""

MESSAGES_PER_SECOND_PER_DETECTOR = 10
"""Quota that cannot be raised: ten messages per second reach one detector instance."""
