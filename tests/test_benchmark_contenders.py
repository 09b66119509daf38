"""The suite's ordered contenders are named after their transport and send through it: the
library's default is the lean transport, so the boto3 row must hand the sender a boto3 client."""

from __future__ import annotations

import sys
from pathlib import Path

import botocore.client
import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

from suite_contenders import sender_options  # noqa: E402

from ordered_sender.transport.http import HttpTransport  # noqa: E402


def test_each_ordered_contender_gets_the_transport_it_is_named_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    boto3_row = sender_options("boto3")
    assert set(boto3_row) == {"client"}
    assert isinstance(boto3_row["client"], botocore.client.BaseClient)
    assert boto3_row["client"].meta.service_model.service_name == "iotevents-data"
    http_row = sender_options("http")
    assert set(http_row) == {"transport"}
    assert isinstance(http_row["transport"], HttpTransport)
    http_row["transport"].close()
    with pytest.raises(ValueError, match="boto3 or http"):
        sender_options("carrier pigeon")
