"""``Faults`` and ``TargetedFault`` refuse bad settings, naming the field and the value."""

from __future__ import annotations

from typing import Any

import pytest

from ordered_sender.emulator import Faults, TargetedFault


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"request_error_rate": 1.5}, "request_error_rate=1.5"),
        ({"entry_error_rate": -0.1}, "entry_error_rate=-0.1"),
        ({"drop_connection_rate": 2}, "drop_connection_rate=2"),
        ({"request_error_codes": (429, 404)}, "contains 404"),
        ({"request_error_codes": ()}, "request_error_codes must name"),
        ({"entry_error_codes": ("Throttling",)}, "contains 'Throttling'"),
        ({"entry_error_codes": ()}, "entry_error_codes must name"),
        ({"latency_ms": (20, 10)}, "latency_ms=(20, 10)"),
        ({"latency_ms": (-1, 10)}, "latency_ms=(-1, 10)"),
    ],
)
def test_bad_fault_settings_are_refused_by_name(settings: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=named.replace("(", r"\(").replace(")", r"\)")):
        Faults(**settings)


def test_a_targeted_fault_needs_an_entry_error_code() -> None:
    with pytest.raises(ValueError, match="contains 'Oops'"):
        TargetedFault("Oops", message_id="m1")


def test_a_targeted_fault_count_must_be_positive_or_none() -> None:
    with pytest.raises(ValueError, match="count=0"):
        TargetedFault("ThrottlingException", count=0)


def test_targeted_faults_match_on_every_given_criterion() -> None:
    rule = TargetedFault("ThrottlingException", message_id="m1", input_name="A")
    assert rule.matches("m1", "A")
    assert not rule.matches("m1", "B")
    assert not rule.matches("m2", "A")
    assert TargetedFault("ThrottlingException").matches("any", "thing")


def test_faults_survive_a_json_round_trip() -> None:
    faults = Faults(
        request_error_rate=0.2,
        request_error_codes=(503,),
        latency_ms=(5, 10),
        targeted=(TargetedFault("InvalidRequestException", message_id="bad", count=None),),
    )
    assert Faults.from_json(faults.to_json()) == faults


def test_faults_from_json_names_an_unknown_field() -> None:
    with pytest.raises(ValueError, match=r"Unknown Faults field\(s\) \['error_rate'\]"):
        Faults.from_json({"error_rate": 0.5})
    with pytest.raises(ValueError, match=r"Unknown TargetedFault field\(s\) \['id'\]"):
        Faults.from_json({"targeted": [{"error_code": "ThrottlingException", "id": "x"}]})
