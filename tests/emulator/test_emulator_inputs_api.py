"""The input control plane through boto3's ``iotevents`` client."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from ordered_sender.emulator import ApiError, Emulator
from ordered_sender.testing import ManualClock

DEFINITION = {"attributes": [{"jsonPath": "motorid"}, {"jsonPath": "sensorData.pressure"}]}


def error_of(call: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    response: dict[str, Any] = caught.value.response
    return response


def test_create_input_answers_201_with_its_configuration(control: Any, clock: ManualClock) -> None:
    response = control.create_input(
        inputName="MotorInput", inputDescription="motors", inputDefinition=DEFINITION
    )
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 201
    configuration = response["inputConfiguration"]
    assert configuration["inputName"] == "MotorInput"
    assert configuration["inputArn"] == "arn:aws:iotevents:us-east-1:123456789012:input/MotorInput"
    assert configuration["status"] == "ACTIVE"
    assert configuration["inputDescription"] == "motors"
    assert configuration["creationTime"].timestamp() == clock()


def test_describe_input_returns_configuration_and_definition(control: Any) -> None:
    control.create_input(inputName="MotorInput", inputDefinition=DEFINITION)
    described = control.describe_input(inputName="MotorInput")["input"]
    assert described["inputConfiguration"]["inputName"] == "MotorInput"
    assert described["inputDefinition"] == DEFINITION


def test_creating_an_existing_input_is_resource_already_exists(control: Any) -> None:
    control.create_input(inputName="MotorInput", inputDefinition=DEFINITION)
    error = error_of(control.create_input, inputName="MotorInput", inputDefinition=DEFINITION)
    assert error["Error"]["Code"] == "ResourceAlreadyExistsException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 409
    assert error["resourceId"] == "MotorInput"


def test_describing_a_missing_input_is_resource_not_found(control: Any) -> None:
    error = error_of(control.describe_input, inputName="Missing")
    assert error["Error"]["Code"] == "ResourceNotFoundException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert "Missing" in error["Error"]["Message"]


@pytest.mark.parametrize(
    ("name", "definition", "where"),
    [
        ("has-dash", DEFINITION, "Value 'has-dash' at 'inputName'"),
        ("Ok", {"attributes": []}, "at 'inputDefinition.attributes'"),
        ("Ok", {"attributes": [{"jsonPath": "a..b"}]}, "Value 'a..b' at 'inputDefinition"),
    ],
)
def test_create_input_validates_as_the_service_model_says(
    emu: Emulator, name: str, definition: dict[str, Any], where: str
) -> None:
    unchecked = emu.client("iotevents", parameter_validation=False)
    error = error_of(unchecked.create_input, inputName=name, inputDefinition=definition)
    assert error["Error"]["Code"] == "InvalidRequestException"
    assert where in error["Error"]["Message"]


def test_a_json_path_with_backquoted_spaces_is_accepted(control: Any) -> None:
    definition = {"attributes": [{"jsonPath": "sensor.`pressure reading`"}]}
    control.create_input(inputName="Quoted", inputDefinition=definition)
    assert control.describe_input(inputName="Quoted")["input"]["inputDefinition"] == definition


def test_list_inputs_pages_through_every_input_in_name_order(emu: Emulator, control: Any) -> None:
    for name in ("Charlie", "Alpha", "Bravo", "Delta"):
        emu.create_input(name)
    names: list[str] = []
    pages = 0
    kwargs: dict[str, Any] = {"maxResults": 2}
    while True:
        page = control.list_inputs(**kwargs)
        pages += 1
        names += [summary["inputName"] for summary in page["inputSummaries"]]
        if "nextToken" not in page:
            break
        kwargs["nextToken"] = page["nextToken"]
    assert names == ["Alpha", "Bravo", "Charlie", "Delta", "PressureInput"]
    assert pages == 3


def test_list_inputs_refuses_a_token_it_did_not_issue(control: Any) -> None:
    error = error_of(control.list_inputs, nextToken="%%%")
    assert error["Error"]["Code"] == "InvalidRequestException"
    assert "nextToken" in error["Error"]["Message"]


def test_list_inputs_refuses_max_results_over_250(emu: Emulator) -> None:
    unchecked = emu.client("iotevents", parameter_validation=False)
    error = error_of(unchecked.list_inputs, maxResults=251)
    assert "Value '251' at 'maxResults'" in error["Error"]["Message"]


def test_update_input_changes_definition_and_last_update_time(
    control: Any, clock: ManualClock
) -> None:
    control.create_input(inputName="MotorInput", inputDefinition=DEFINITION)
    clock.advance(60)
    new_definition = {"attributes": [{"jsonPath": "temperature"}]}
    updated = control.update_input(inputName="MotorInput", inputDefinition=new_definition)
    configuration = updated["inputConfiguration"]
    assert configuration["lastUpdateTime"].timestamp() == clock()
    assert configuration["creationTime"].timestamp() == clock() - 60
    assert control.describe_input(inputName="MotorInput")["input"]["inputDefinition"] == (
        new_definition
    )


def test_deleted_input_is_gone_and_its_messages_are_not_found(
    control: Any, data: Any, message: Any
) -> None:
    control.delete_input(inputName="PressureInput")
    assert error_of(control.describe_input, inputName="PressureInput")
    response = data.batch_put_message(messages=[message("m1")])
    assert response["BatchPutMessageErrorEntries"][0]["errorCode"] == "ResourceNotFoundException"


def test_deleting_a_missing_input_is_resource_not_found(control: Any) -> None:
    error = error_of(control.delete_input, inputName="Missing")
    assert error["Error"]["Code"] == "ResourceNotFoundException"


def test_a_delete_guard_makes_delete_input_resource_in_use(emu: Emulator, control: Any) -> None:
    emu.inputs.add_delete_guard(
        lambda name: "detector model Motors reads it" if name == "PressureInput" else None
    )
    error = error_of(control.delete_input, inputName="PressureInput")
    assert error["Error"]["Code"] == "ResourceInUseException"
    assert "detector model Motors" in error["Error"]["Message"]
    assert emu.inputs.exists("PressureInput")


def test_create_input_from_python_is_validated_like_the_api(emu: Emulator) -> None:
    with pytest.raises(ApiError) as caught:
        emu.create_input("bad-name")
    assert caught.value.code == "InvalidRequestException"
    assert "Value 'bad-name' at 'inputName'" in caught.value.message
