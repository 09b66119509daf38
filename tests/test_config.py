"""SenderConfig refuses impossible settings with the field and value named."""

from __future__ import annotations

import pytest

from ordered_sender import InvalidConfig, SenderConfig


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("concurrency", 0),
        ("concurrency", 2.5),
        ("concurrency", True),
        ("max_messages_per_request", 11),
        ("max_messages_per_request", 0),
        ("max_payload_bytes_per_request", 0),
        ("synchronous", "SOMETIMES"),
        ("send_timestamp", "yes"),
        ("request_timeout", 0),
        ("idle_poll_seconds", -1),
        ("delivered_retention_seconds", "long"),
        ("lane", "PressureInput"),
        ("retry_wait", 5),
        ("retry_stop", None),
    ],
)
def test_bad_field_is_named_with_its_value(field: str, value: object) -> None:
    with pytest.raises(InvalidConfig) as caught:
        SenderConfig(**{field: value})  # type: ignore[arg-type]
    assert str(caught.value).startswith(f"SenderConfig.{field}={value!r}: ")
    assert isinstance(caught.value, ValueError)


def test_defaults_follow_the_documented_service_limits() -> None:
    config = SenderConfig()
    assert config.max_messages_per_request == 10
    assert config.max_payload_bytes_per_request == 1024
    assert config.synchronous == "FULL"
    assert config.send_timestamp is True
