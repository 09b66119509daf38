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

MESSAGE_ID_MAX_LENGTH = 64
MESSAGE_ID_PATTERN = re.compile(r"^[a-zA-Z0-9_-]+$")

INPUT_NAME_MAX_LENGTH = 128
INPUT_NAME_PATTERN = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")

DEDUPLICATION_WINDOW_SECONDS = 300.0
"""IoT Events ignores a messageId it has already seen within the last five minutes."""

MESSAGES_PER_SECOND_PER_DETECTOR = 10
"""Quota that cannot be raised: ten messages per second reach one detector instance."""
