"""Fixtures of the emulator tests: a started emulator on a manual clock, and boto3 clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ordered_sender.emulator import Emulator
from ordered_sender.testing import ManualClock

INPUT = "PressureInput"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def emu(clock: ManualClock) -> Iterator[Emulator]:
    """An emulator with one input, ``PressureInput``, that keeps request order."""
    with Emulator(seed=7, clock=clock, shuffle=False) as started:
        started.create_input(INPUT)
        yield started


@pytest.fixture
def data(emu: Emulator) -> Any:
    return emu.client("iotevents-data")


@pytest.fixture
def raw_data(emu: Emulator) -> Any:
    """An ``iotevents-data`` client that sends what boto3's own validation would refuse."""
    return emu.client("iotevents-data", parameter_validation=False)


@pytest.fixture
def control(emu: Emulator) -> Any:
    return emu.client("iotevents")


MessageFactory = Callable[..., dict[str, Any]]


@pytest.fixture
def message() -> MessageFactory:
    """Builds one BatchPutMessage entry: ``message("m1")``, ``message("m2", "OtherInput")``."""

    def build(message_id: str, input_name: str = INPUT, payload: bytes = b"{}") -> dict[str, Any]:
        return {"messageId": message_id, "inputName": input_name, "payload": payload}

    return build
