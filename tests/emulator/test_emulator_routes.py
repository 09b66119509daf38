"""The route table: specific templates win, unknown paths are errors, other modules add routes."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from ordered_sender.emulator import ApiError, ApiRequest, ApiResponse, Emulator
from ordered_sender.emulator.wire import Router


def answer(name: str) -> Any:
    def handler(request: ApiRequest) -> ApiResponse:
        return ApiResponse(200, {"handler": name, **request.path_parameters})

    return handler


def test_the_template_with_more_literal_segments_wins_whatever_the_order() -> None:
    router = Router()
    router.add("GET", "/inputs/{inputName}", answer("describe"))
    router.add("GET", "/inputs/messages", answer("literal"))
    handler, parameters = router.resolve("GET", "/inputs/messages")
    assert handler(ApiRequest("GET", "/inputs/messages", parameters, {})).body == {
        "handler": "literal"
    }
    handler, parameters = router.resolve("GET", "/inputs/Pressure%20Input")
    assert parameters == {"inputName": "Pressure Input"}


def test_an_unknown_path_is_404_and_a_wrong_method_is_405() -> None:
    router = Router()
    router.add("GET", "/inputs", answer("list"))
    with pytest.raises(ApiError) as missing:
        router.resolve("GET", "/nowhere")
    with pytest.raises(ApiError) as wrong_method:
        router.resolve("PATCH", "/inputs")
    assert (missing.value.status, wrong_method.value.status) == (404, 405)


def test_a_route_cannot_be_registered_twice() -> None:
    router = Router()
    router.add("GET", "/inputs", answer("list"))
    with pytest.raises(ValueError, match="GET /inputs is already registered"):
        router.add("GET", "/inputs", answer("again"))


def test_a_route_added_from_another_module_is_served_to_boto3(emu: Emulator) -> None:
    # Alarms are not emulated, so their paths are free for a module of another's to serve.
    def describe_alarm(request: ApiRequest) -> ApiResponse:
        name = request.path_parameters["alarmModelName"]
        if request.query.get("keyValue") != "motor-1":
            raise ApiError.not_found(f"No alarm {request.query.get('keyValue')!r} in {name}")
        return ApiResponse(
            200, {"alarm": {"alarmModelName": name, "keyValue": "motor-1", "severity": 3}}
        )

    emu.add_route("GET", "/alarms/{alarmModelName}/keyValues", describe_alarm)
    client = emu.client("iotevents-data")
    alarm = client.describe_alarm(alarmModelName="Motors", keyValue="motor-1")
    assert alarm["alarm"]["severity"] == 3
    with pytest.raises(ClientError) as caught:
        client.describe_alarm(alarmModelName="Motors", keyValue="motor-2")
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_a_handler_that_crashes_answers_internal_failure(emu: Emulator) -> None:
    def broken(request: ApiRequest) -> ApiResponse:
        raise KeyError("bug")

    emu.add_route("GET", "/alarms/{alarmModelName}", broken)
    with pytest.raises(ClientError) as caught:
        emu.client("iotevents-data").list_alarms(alarmModelName="Motors")
    assert caught.value.response["Error"]["Code"] == "InternalFailureException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
