"""Detector models from the AWS IoT Events developer guide, reusable by tests, examples and demos.

``MOTOR_DETECTOR_MODEL`` is the CreateDetectorModel request of the guide's "simple step-by-step
example" (motorDetectorModel.json): states Normal and Dangerous, key ``motorid``, input
``PressureInput`` read at ``sensorData.pressure``. A pressure above 70 makes a motor Dangerous;
three consecutive readings of 70 or less bring it back to Normal. Pass it as keyword arguments:
``client.create_detector_model(**MOTOR_DETECTOR_MODEL)``, after creating ``MOTOR_INPUT``.
"""

from __future__ import annotations

from typing import Any

MOTOR_INPUT: dict[str, Any] = {
    "inputName": "PressureInput",
    "inputDescription": "Pressure readings from a motor",
    "inputDefinition": {
        "attributes": [{"jsonPath": "sensorData.pressure"}, {"jsonPath": "motorid"}]
    },
}
"""The guide's CreateInput request (pressureInput.json) that the motor model reads."""

MOTOR_DETECTOR_MODEL: dict[str, Any] = {
    "detectorModelName": "motorDetectorModel",
    "detectorModelDefinition": {
        "states": [
            {
                "stateName": "Normal",
                "onEnter": {
                    "events": [
                        {
                            "eventName": "init",
                            "condition": "true",
                            "actions": [
                                {
                                    "setVariable": {
                                        "variableName": "pressureThresholdBreached",
                                        "value": "0",
                                    }
                                }
                            ],
                        }
                    ]
                },
                "onInput": {
                    "transitionEvents": [
                        {
                            "eventName": "Overpressurized",
                            "condition": "$input.PressureInput.sensorData.pressure > 70",
                            "actions": [
                                {
                                    "setVariable": {
                                        "variableName": "pressureThresholdBreached",
                                        "value": "$variable.pressureThresholdBreached + 3",
                                    }
                                }
                            ],
                            "nextState": "Dangerous",
                        }
                    ]
                },
            },
            {
                "stateName": "Dangerous",
                "onEnter": {
                    "events": [
                        {
                            "eventName": "Pressure Threshold Breached",
                            "condition": "$variable.pressureThresholdBreached > 1",
                            "actions": [
                                {
                                    "sns": {
                                        "targetArn": (
                                            "arn:aws:sns:us-east-1:123456789012:underPressureAction"
                                        )
                                    }
                                }
                            ],
                        }
                    ]
                },
                "onInput": {
                    "events": [
                        {
                            "eventName": "Overpressurized",
                            "condition": "$input.PressureInput.sensorData.pressure > 70",
                            "actions": [
                                {
                                    "setVariable": {
                                        "variableName": "pressureThresholdBreached",
                                        "value": "3",
                                    }
                                }
                            ],
                        },
                        {
                            "eventName": "Pressure Okay",
                            "condition": "$input.PressureInput.sensorData.pressure <= 70",
                            "actions": [
                                {
                                    "setVariable": {
                                        "variableName": "pressureThresholdBreached",
                                        "value": "$variable.pressureThresholdBreached - 1",
                                    }
                                }
                            ],
                        },
                    ],
                    "transitionEvents": [
                        {
                            "eventName": "BackToNormal",
                            "condition": (
                                "$input.PressureInput.sensorData.pressure <= 70 && "
                                "$variable.pressureThresholdBreached <= 1"
                            ),
                            "nextState": "Normal",
                        }
                    ],
                },
                "onExit": {
                    "events": [
                        {
                            "eventName": "Normal Pressure Restored",
                            "condition": "true",
                            "actions": [
                                {
                                    "sns": {
                                        "targetArn": (
                                            "arn:aws:sns:us-east-1:123456789012:pressureClearedAction"
                                        )
                                    }
                                }
                            ],
                        }
                    ]
                },
            },
        ],
        "initialStateName": "Normal",
    },
    "key": "motorid",
    "roleArn": "arn:aws:iam::123456789012:role/IoTEventsRole",
}
"""The guide's CreateDetectorModel request, unchanged."""


def motor_payload(motor_id: str, pressure: int, temperature: int = 39) -> dict[str, Any]:
    """A message of the guide's format for ``PressureInput``."""
    return {"motorid": motor_id, "sensorData": {"pressure": pressure, "temperature": temperature}}
