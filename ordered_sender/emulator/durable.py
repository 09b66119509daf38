"""The endpoint's state in a SQLite file (``--state PATH``), so a restart loses nothing.

What is kept: inputs, detector model versions, detectors (state, variables, timers with their
absolute expiry, expired timers not yet checked, last payloads) and the de-duplication window.
Not kept: the record (processed messages, requests, counters, the action log) and the faults:
they describe a run, not the service.

The whole state is one JSON document in one row, replaced in one transaction after every
request that changed it and before that request is answered (synchronous=FULL, WAL): what a
client saw acknowledged survives a SIGKILL; a request killed before its answer may or may not
be there, as on any service. The cost is one serialization per request, proportional to the
state: fine for a local endpoint's thousands of detectors, not meant for millions.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

FORMAT = 1
"""Version of the document's layout; a file of another version is refused, not guessed at."""

_CREATE = "CREATE TABLE IF NOT EXISTS state (id INTEGER PRIMARY KEY CHECK (id = 1), document TEXT)"
_READ = "SELECT document FROM state WHERE id = 1"
_WRITE = "INSERT OR REPLACE INTO state (id, document) VALUES (1, :document)"


class StateFileError(ValueError):
    """The state file cannot be used; the message names the path and what to do."""


class StateFile:
    """One SQLite file holding the endpoint's state; safe to save from any thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._last_written: str | None = None
        try:
            self._connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        except sqlite3.Error as error:
            raise StateFileError(f"cannot open the state file {str(path)!r}: {error}") from error
        try:
            self._connection.execute("PRAGMA journal_mode=WAL")
            self._connection.execute("PRAGMA synchronous=FULL")
            self._connection.execute(_CREATE)
        except sqlite3.Error as error:
            self._connection.close()
            raise StateFileError(
                f"{str(path)!r} is not a state file of this endpoint ({error}); give another "
                "--state path"
            ) from error

    def load(self) -> dict[str, Any] | None:
        """The saved state, or ``None`` for a new file."""
        with self._lock:
            row = self._connection.execute(_READ).fetchone()
        if row is None:
            return None
        self._last_written = row[0]
        document = json.loads(row[0])
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            found = document.get("format") if isinstance(document, dict) else None
            raise StateFileError(
                f"the state file {str(self.path)!r} has format {found!r}; this endpoint reads "
                f"format {FORMAT}"
            )
        return document

    def save(self, document: dict[str, Any]) -> None:
        """Replace the saved state with ``document`` (skipped when nothing changed)."""
        text = json.dumps({"format": FORMAT, **document}, separators=(",", ":"))
        with self._lock:
            if text == self._last_written:
                return
            with self._connection:
                self._connection.execute("BEGIN IMMEDIATE")
                self._connection.execute(_WRITE, {"document": text})
            self._last_written = text

    def close(self) -> None:
        with self._lock:
            self._connection.close()
