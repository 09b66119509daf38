"""The chaos harness (benchmarks/chaos.py): its judge catches each failure on hand-made records,
and a short real run (emulator, deliverers and producers in processes, SIGKILLs) comes out clean."""

from __future__ import annotations

import base64
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def load_judge() -> ModuleType:
    """benchmarks/ is scripts, not a package: load the judge from its file."""
    spec = importlib.util.spec_from_file_location("chaos_check", BENCHMARKS / "chaos_check.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["chaos_check"] = module
    spec.loader.exec_module(module)
    return module


chaos_check = load_judge()


def processed(lane: str, index: int, request_number: int = 1) -> dict[str, Any]:
    """One element of ``/_emulator/processed``, as the emulator answers it."""
    payload = json.dumps({"lane": lane, "index": index}).encode()
    return {
        "message_id": chaos_check.message_id(lane, index),
        "input_name": lane,
        "payload": base64.b64encode(payload).decode(),
        "request_number": request_number,
    }


def ledger_of(lane: str, indices: range) -> str:
    return "".join(
        f"try {lane} {i}\nok {lane} {i} {chaos_check.message_id(lane, i)}\n" for i in indices
    )


def test_an_acknowledged_message_never_processed_is_lost_and_a_hole_is_a_gap() -> None:
    ledger = chaos_check.read_ledger(ledger_of("A", range(4)))
    verdict = chaos_check.judge(ledger.acknowledged, [processed("A", 0), processed("A", 2)], ["A"])
    assert (verdict.lost, verdict.gaps, verdict.sound) == (2, 1, False)
    assert verdict.lost_examples == ("A-0000001", "A-0000003")


def test_a_lane_processed_out_of_order_is_reordered_but_other_lanes_may_interleave() -> None:
    ledger = chaos_check.read_ledger(ledger_of("A", range(3)) + ledger_of("B", range(2)))
    record = [processed("B", 0), processed("A", 0), processed("A", 2), processed("B", 1)]
    verdict = chaos_check.judge(ledger.acknowledged, [*record, processed("A", 1)], ["A", "B"])
    assert (verdict.lost, verdict.reordered, verdict.sound) == (0, 1, False)
    assert verdict.reordered_examples == ("A: 1 after 2",)


def test_a_message_id_processed_twice_is_a_duplicate_not_a_reorder() -> None:
    ledger = chaos_check.read_ledger(ledger_of("A", range(2)))
    record = [processed("A", 0), processed("A", 0), processed("A", 1)]
    verdict = chaos_check.judge(ledger.acknowledged, record, ["A"])
    assert (verdict.duplicates_processed, verdict.reordered, verdict.processed) == (1, 0, 3)
    assert verdict.sound


def test_a_put_in_doubt_may_be_processed_or_not_and_a_cut_last_line_promises_nothing() -> None:
    text = ledger_of("A", range(2)) + "try A 2\ntry A 3\nok A 3 A-000"
    ledger = chaos_check.read_ledger(text)
    assert len(ledger.acknowledged) == 2
    assert ledger.highest_tried == {"A": 3}
    verdict = chaos_check.judge(
        ledger.acknowledged, [processed("A", 0), processed("A", 1), processed("A", 3)], ["A"]
    )
    assert (verdict.acknowledged, verdict.processed_in_doubt, verdict.lost) == (2, 1, 0)


def test_messages_of_other_inputs_are_not_judged() -> None:
    verdict = chaos_check.judge([], [processed("Other", 5), processed("Other", 1)], ["A"])
    assert (verdict.processed, verdict.reordered) == (0, 0)


def test_faults_are_counted_by_kind_and_a_request_processed_in_another_order_is_shuffled() -> None:
    def request(number: int, ids: list[str], **answer: Any) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "status": 200,
            "error_code": None,
            "error_entries": [],
            "dropped": False,
        }
        return {
            "number": number,
            "messages": [{"message_id": i} for i in ids],
            "latency_ms": 0,
            **fields,
            **answer,
        }

    requests = [
        request(1, ["a", "b"], status=503, error_code="ServiceUnavailableException"),
        request(2, ["a", "b"], error_entries=[{"error_code": "ThrottlingException"}]),
        request(3, ["b", "c"], dropped=True, latency_ms=3),
        request(4, ["d", "e"]),
    ]
    record = [
        {"message_id": "a", "request_number": 2},
        {"message_id": "c", "request_number": 3},
        {"message_id": "b", "request_number": 3},
        {"message_id": "d", "request_number": 4},
        {"message_id": "e", "request_number": 4},
    ]
    assert chaos_check.faults_by_kind(requests, record) == {
        "connection dropped": 1,
        "entry ThrottlingException": 1,
        "latency added": 1,
        "request 503 ServiceUnavailableException": 1,
        "shuffled": 1,
    }


EVERY_FAULT_KIND = (
    "request 429 ThrottlingException",
    "request 500 InternalFailureException",
    "request 503 ServiceUnavailableException",
    "entry ThrottlingException",
    "entry ServiceUnavailableException",
    "entry InternalFailureException",
    "connection dropped",
    "latency added",
    "shuffled",
)


@pytest.mark.slow
def test_a_short_chaos_run_loses_and_reorders_nothing_through_every_fault(tmp_path: Path) -> None:
    rounds = 3
    finished = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "chaos.py"),
            f"--rounds={rounds}",
            "--seed=7",
            "--lanes=4",
            "--messages-per-round=60",
            # Higher than the defaults, so that a run this short meets every kind of fault.
            "--request-error-rate=0.15",
            "--entry-error-rate=0.2",
            "--drop-connection-rate=0.08",
            "--drain-timeout=60",
            f"--outdir={tmp_path}",
        ],
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    document = json.loads((tmp_path / f"chaos-rounds{rounds}-seed7.json").read_text())
    assert document["acknowledged"] > 0
    assert (document["lost"], document["reordered"], document["duplicates_processed"]) == (0, 0, 0)
    assert document["kills"] == rounds
    assert document["problems"] == []
    missing = [kind for kind in EVERY_FAULT_KIND if document["faults"].get(kind, 0) == 0]
    assert missing == []
    assert (tmp_path / f"chaos-rounds{rounds}-seed7.txt").read_text().count("PASS") == 1
