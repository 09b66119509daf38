"""The endpoint's state in a SQLite file (``--state PATH``), so a restart loses nothing.

What is kept: inputs, detector model versions, detectors (state, variables, timers with their
absolute expiry, expired timers not yet checked, last payloads) and the de-duplication window.
Not kept: the record (processed messages, requests, counters, the action log) and the faults:
they describe a run, not the service.

One row per input, model, detector and remembered messageId, as JSON; after every request, and
before it is answered, the rows that changed are written in one transaction (synchronous=FULL,
WAL): what a client saw acknowledged survives a SIGKILL; a request killed before its answer may
or may not be there, as on any service. Finding what changed serializes the whole state once
per request: fine for a local endpoint's thousands of detectors, not meant for millions.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

FORMAT = 1
"""Version of the file's layout; a file of another version is refused, not guessed at."""

_CREATE = (
    "CREATE TABLE IF NOT EXISTS state ("
    " kind TEXT NOT NULL, name TEXT NOT NULL, document TEXT NOT NULL,"
    " PRIMARY KEY (kind, name))"
)
_READ = "SELECT kind, name, document FROM state"
_WRITE = "INSERT OR REPLACE INTO state (kind, name, document) VALUES (?, ?, ?)"
_DELETE = "DELETE FROM state WHERE kind = ? AND name = ?"

Row = tuple[str, str]
"""(kind, name) of one row: ``meta``/``format``, an input, a model, a detector, a messageId."""


class StateFileError(ValueError):
    """The state file cannot be used; the message names the path and what to do."""


def _row_values(document: dict[str, Any]) -> dict[Row, Any]:
    """One row per input, model, detector and remembered messageId, so a save writes only what
    changed (one detector and one messageId for a typical message)."""
    rows: dict[Row, Any] = {("meta", "format"): FORMAT}
    for resource in document["inputs"]:
        rows["input", resource["name"]] = resource
    for versions in document["detectors"]["models"]:
        rows["model", versions[0]["name"]] = versions
    for detector in document["detectors"]["detectors"]:
        rows["detector", json.dumps([detector["modelName"], detector["keyValue"]])] = detector
    for message_id, processed_at in document["deduplicationWindow"]:
        rows["message", message_id] = float(processed_at)
    return rows


def _document(rows: dict[Row, str]) -> dict[str, Any]:
    """The inverse of ``_rows``."""

    def of(kind: str) -> list[Any]:
        return [
            json.loads(text) for (row_kind, _), text in sorted(rows.items()) if row_kind == kind
        ]

    window = sorted(
        ((name, json.loads(text)) for (kind, name), text in rows.items() if kind == "message"),
        key=lambda pair: pair[1],
    )
    return {
        "inputs": of("input"),
        "deduplicationWindow": window,
        "detectors": {"models": of("model"), "detectors": of("detector")},
    }


class StateFile:
    """One SQLite file holding the endpoint's state; safe to save from any thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._written: dict[Row, str] = {}
        self._texts: dict[Row, tuple[Any, str]] = {}
        """The value each row was last serialized from: an unchanged detector is the very same
        object (the registry hands out the same document until the detector changes), so it
        is not serialized again."""
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
            rows = {(kind, name): text for kind, name, text in self._connection.execute(_READ)}
        if not rows:
            return None
        found = json.loads(rows.get(("meta", "format"), "null"))
        if found != FORMAT:
            raise StateFileError(
                f"the state file {str(self.path)!r} has format {found!r}; this endpoint reads "
                f"format {FORMAT}"
            )
        self._written = rows
        return _document(rows)

    def save(self, document: dict[str, Any]) -> None:
        """Make the file hold ``document``, writing only the rows that changed."""
        with self._lock:
            rows = {row: self._text(row, value) for row, value in _row_values(document).items()}
            changed = [(row, text) for row, text in rows.items() if self._written.get(row) != text]
            gone = [row for row in self._written if row not in rows]
            if not changed and not gone:
                return
            with self._connection:
                self._connection.execute("BEGIN IMMEDIATE")
                self._connection.executemany(_DELETE, gone)
                self._connection.executemany(_WRITE, [(*row, text) for row, text in changed])
            self._written = rows

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    def _text(self, row: Row, value: Any) -> str:
        if isinstance(value, float):
            return repr(value)  # JSON for the finite clock readings of the window; cheap
        cached = self._texts.get(row)
        if cached is not None and cached[0] is value:
            return cached[1]
        text = json.dumps(value, separators=(",", ":"))
        self._texts[row] = (value, text)
        return text
