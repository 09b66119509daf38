"""configure_logging: JSON lines, coloured text on a terminal, plain text elsewhere, NO_COLOR,
the level filter, and the library's own events going through it without their payloads."""

from __future__ import annotations

import io
import json
import os
import pty
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import pytest

from ordered_sender import Outbox, configure_logging
from ordered_sender.events import log

ANSI_ESCAPE = "\x1b["


@pytest.fixture
def terminal() -> Iterator[tuple[TextIO, int]]:
    """A real pseudo-terminal: the stream to log to, and the file descriptor to read it from."""
    primary, secondary = pty.openpty()
    stream = os.fdopen(secondary, "w")
    try:
        yield stream, primary
    finally:
        stream.close()
        os.close(primary)


def read_terminal(stream: TextIO, primary: int) -> str:
    stream.flush()
    return os.read(primary, 65536).decode()


def test_json_lines_carry_time_level_event_and_fields(tmp_path: Path) -> None:
    stream = io.StringIO()
    configure_logging(json=True, level="debug", stream=stream)
    with Outbox(tmp_path / "outbox.db") as outbox:
        receipt = outbox.put("Pressure", {"secret": "s3cr3t-payload"})
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    enqueued = next(e for e in events if e["event"] == "message.enqueued")
    assert enqueued["level"] == "debug"
    assert enqueued["message_id"] == receipt.message_id
    assert enqueued["lane"] == "Pressure"
    assert enqueued["timestamp"].endswith("Z")
    assert "s3cr3t-payload" not in stream.getvalue()


def test_json_lines_render_an_exception_as_text_in_the_event() -> None:
    stream = io.StringIO()
    configure_logging(json=True, stream=stream)
    try:
        raise RuntimeError("the disk caught fire")
    except RuntimeError:
        log.exception("dispatcher.error")
    (event,) = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert event["level"] == "error"
    assert "RuntimeError: the disk caught fire" in event["exception"]


def test_text_to_a_file_or_pipe_has_no_colour_codes() -> None:
    stream = io.StringIO()
    configure_logging(stream=stream)
    log.warning("endpoint.unavailable", error_code="ThrottlingException")
    written = stream.getvalue()
    assert "endpoint.unavailable" in written
    assert "error_code=ThrottlingException" in written
    assert ANSI_ESCAPE not in written
    with pytest.raises(json.JSONDecodeError):
        json.loads(written)


def test_text_on_a_terminal_is_coloured(
    terminal: tuple[TextIO, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    stream, primary = terminal
    configure_logging(stream=stream)
    log.warning("endpoint.unavailable", error_code="ThrottlingException")
    written = read_terminal(stream, primary)
    assert "endpoint.unavailable" in written
    assert ANSI_ESCAPE in written


def test_no_color_keeps_a_terminal_plain(
    terminal: tuple[TextIO, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    stream, primary = terminal
    configure_logging(stream=stream)
    log.warning("endpoint.unavailable")
    written = read_terminal(stream, primary)
    assert "endpoint.unavailable" in written
    assert ANSI_ESCAPE not in written


def test_events_below_the_level_are_dropped() -> None:
    stream = io.StringIO()
    configure_logging(json=True, level="WARNING", stream=stream)
    log.info("sender.started")
    log.warning("endpoint.unavailable")
    events = [json.loads(line)["event"] for line in stream.getvalue().splitlines()]
    assert events == ["endpoint.unavailable"]


def test_without_a_stream_each_event_goes_to_the_current_stderr(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    configure_logging(json=True)
    replaced = io.StringIO()
    monkeypatch.setattr(sys, "stderr", replaced)
    log.warning("endpoint.unavailable")
    assert json.loads(replaced.getvalue())["event"] == "endpoint.unavailable"


@pytest.mark.parametrize("level", ["verbose", "", 10])
def test_an_unknown_level_is_refused_naming_it(level: object) -> None:
    with pytest.raises(ValueError, match="debug, info, warning, error, critical") as refused:
        configure_logging(level=level)  # type: ignore[arg-type]
    assert f"level={level!r}" in str(refused.value)
