"""What ``compile_definition`` accepts and refuses beyond the service model's shapes."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ordered_sender.emulator.detectors.examples import MOTOR_DETECTOR_MODEL
from ordered_sender.emulator.detectors.models import (
    DetectorModelError,
    ExternalAction,
    SetTimer,
    compile_definition,
    key_path,
)


def motor_definition() -> dict[str, Any]:
    definition: dict[str, Any] = copy.deepcopy(MOTOR_DETECTOR_MODEL["detectorModelDefinition"])
    return definition


def test_the_guide_motor_model_compiles_and_reads_its_one_input() -> None:
    compiled = compile_definition(motor_definition(), lambda name: name == "PressureInput")

    assert compiled.initial_state_name == "Normal"
    assert list(compiled.states) == ["Normal", "Dangerous"]
    assert compiled.input_names == frozenset({"PressureInput"})
    dangerous = compiled.states["Dangerous"]
    assert [e.name for e in dangerous.on_input] == ["Overpressurized", "Pressure Okay"]
    assert [t.next_state for t in dangerous.transitions] == ["Normal"]
    [alarm] = dangerous.on_enter[0].actions
    assert isinstance(alarm, ExternalAction)
    assert (alarm.action_type, alarm.content, alarm.payload_type) == ("sns", None, None)


def test_two_states_with_one_name_are_refused() -> None:
    definition = motor_definition()
    definition["states"][1]["stateName"] = "Normal"

    with pytest.raises(DetectorModelError) as refused:
        compile_definition(definition, lambda name: True)

    assert refused.value.location == "detectorModelDefinition.states[1].stateName"
    assert "'Normal'" in refused.value.problem


def test_an_event_without_condition_compiles_to_none_meaning_true() -> None:
    definition = motor_definition()
    del definition["states"][0]["onEnter"]["events"][0]["condition"]

    compiled = compile_definition(definition, lambda name: True)

    assert compiled.states["Normal"].on_enter[0].condition is None


def test_a_timer_keeps_either_its_seconds_or_its_parsed_duration() -> None:
    definition = motor_definition()
    definition["states"][0]["onEnter"]["events"][0]["actions"] = [
        {"setTimer": {"timerName": "fixed", "seconds": 60}},
        {"setTimer": {"timerName": "computed", "durationExpression": "$variable.wait * 2"}},
    ]

    actions = compile_definition(definition, lambda name: True).states["Normal"].on_enter[0].actions

    fixed, computed = actions
    assert isinstance(fixed, SetTimer) and isinstance(computed, SetTimer)
    assert (fixed.seconds, fixed.duration) == (60, None)
    assert computed.seconds is None
    assert computed.duration is not None
    assert computed.duration.variable_references() == frozenset({"wait"})


@pytest.mark.parametrize(
    ("key", "path"),
    [
        ("motorid", ("motorid",)),
        ("device.serial", ("device", "serial")),
        ("`motor id`", ("motor id",)),
        ("sensor.`serial no`.id", ("sensor", "serial no", "id")),
    ],
)
def test_a_key_is_read_as_attribute_names_with_backticks_around_odd_ones(
    key: str, path: tuple[str, ...]
) -> None:
    assert key_path(key) == path
