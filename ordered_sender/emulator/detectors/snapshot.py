"""Detector models and detectors as JSON documents, and back: what ``--state`` keeps.

A model version is kept as the request it was stored from (its definition is compiled again on
the way back, so a snapshot never holds parsed expressions); a detector as its state, variables,
timers (absolute expiry times on the endpoint's clock), expired timers not yet checked and the
last payload of each input. Values round-trip with their types (JSON keeps ``3`` and ``3.0``
apart). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ordered_sender.emulator.detectors.models import (
    DetectorModelVersion,
    EvaluationMethod,
    compile_definition,
)
from ordered_sender.emulator.detectors.state import Detector, Timer

JsonObject = dict[str, Any]


def version_to_json(version: DetectorModelVersion) -> JsonObject:
    return {
        "name": version.name,
        "version": version.version,
        "arn": version.arn,
        "definition": version.definition,
        "description": version.description,
        "roleArn": version.role_arn,
        "key": version.key,
        "evaluationMethod": version.evaluation_method.value,
        "creationTime": version.creation_time,
        "lastUpdateTime": version.last_update_time,
    }


def version_from_json(
    document: Mapping[str, Any], input_exists: Callable[[str], bool]
) -> DetectorModelVersion:
    return DetectorModelVersion(
        name=document["name"],
        version=document["version"],
        arn=document["arn"],
        definition=document["definition"],
        compiled=compile_definition(document["definition"], input_exists),
        description=document["description"],
        role_arn=document["roleArn"],
        key=document["key"],
        evaluation_method=EvaluationMethod(document["evaluationMethod"]),
        creation_time=document["creationTime"],
        last_update_time=document["lastUpdateTime"],
    )


def detector_to_json(detector: Detector) -> JsonObject:
    return {
        "modelName": detector.model_name,
        "modelVersion": detector.model_version,
        "keyValue": detector.key_value,
        "stateName": detector.state_name,
        "variables": dict(detector.variables),
        "timers": [
            {"name": t.name, "expiresAt": t.expires_at, "durationSeconds": t.duration_seconds}
            for t in detector.timers.values()
        ],
        "expiredTimers": sorted(detector.expired_timers),
        "lastPayloads": dict(detector.last_payloads),
        "creationTime": detector.creation_time,
        "lastUpdateTime": detector.last_update_time,
    }


def detector_from_json(document: Mapping[str, Any]) -> Detector:
    return Detector(
        model_name=document["modelName"],
        model_version=document["modelVersion"],
        key_value=document["keyValue"],
        state_name=document["stateName"],
        variables=dict(document["variables"]),
        timers={
            t["name"]: Timer(t["name"], t["expiresAt"], t["durationSeconds"])
            for t in document["timers"]
        },
        expired_timers=frozenset(document["expiredTimers"]),
        last_payloads=dict(document["lastPayloads"]),
        creation_time=document["creationTime"],
        last_update_time=document["lastUpdateTime"],
    )
