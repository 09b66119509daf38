"""Where log events go when the application has not configured structlog."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from ordered_sender import OrderedSender
from ordered_sender.emulator import Emulator, Faults, TargetedFault


def test_unconfigured_the_library_prints_nothing_and_uses_stdlib_logging(
    outbox: Path,
    emulator: Emulator,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    emulator.create_input("A")
    emulator.set_faults(
        Faults(targeted=(TargetedFault("ResourceNotFoundException", message_id="m-1"),))
    )
    caplog.set_level(logging.DEBUG, logger="ordered_sender")
    with OrderedSender(outbox, client=emulator.client("iotevents-data"), autostart=False) as s:
        s.put("A", {"secret": "hunter2"}, message_id="m-1")
        s.deliver_due()

    assert capsys.readouterr().out == ""
    by_event = {record.getMessage().split("'")[1]: record for record in caplog.records}
    assert by_event["lane.paused"].levelno == logging.WARNING
    assert "message_id='m-1'" in by_event["lane.paused"].getMessage()
    assert by_event["message.enqueued"].levelno == logging.DEBUG
    assert all("hunter2" not in record.getMessage() for record in caplog.records)
