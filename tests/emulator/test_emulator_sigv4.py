"""SigV4 verification in the emulator: what botocore signs passes, anything else is refused.

Requests are signed by boto3's own clients, or signed with botocore's signer and then changed on
purpose before they go over HTTP to the emulator on 127.0.0.1.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.credentials
import pytest
import urllib3
from botocore.config import Config
from botocore.exceptions import ClientError

from ordered_sender.emulator import Emulator

INPUT = "PressureInput"
SECRETS = {"testing": "testing", "second-key": "second-secret"}
BODY = json.dumps(
    {"messages": [{"messageId": "m1", "inputName": INPUT, "payload": "eyJ2YWx1ZSI6IDF9"}]}
).encode()


@pytest.fixture
def verifying() -> Iterator[Emulator]:
    with Emulator(seed=1, verify_signatures=SECRETS) as emu:
        emu.create_input(INPUT)
        yield emu


def client(
    emu: Emulator | str, service: str, access_key: str, secret: str, region: str = "us-east-1"
) -> Any:
    """A boto3 client for the emulator (or the URL of one) with these credentials."""
    return boto3.session.Session().client(
        service,
        endpoint_url=emu if isinstance(emu, str) else emu.endpoint_url,
        region_name=region,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret,
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )


def put(data_client: Any, message_id: str = "m1") -> Any:
    return data_client.batch_put_message(
        messages=[{"messageId": message_id, "inputName": INPUT, "payload": b'{"value": 1}'}]
    )


def error_of(call: Any) -> tuple[int, str]:
    with pytest.raises(ClientError) as raised:
        call()
    response = raised.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"]


def signed(emu: Emulator, body: bytes, secret: str = "testing") -> dict[str, str]:
    """The headers botocore's signer gives this BatchPutMessage body."""
    request = botocore.awsrequest.AWSRequest(
        method="POST",
        url=f"{emu.endpoint_url}/inputs/messages",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    credentials = botocore.credentials.Credentials("testing", secret)
    botocore.auth.SigV4Auth(credentials, "ioteventsdata", "us-east-1").add_auth(request)
    return dict(request.headers.items())


def raw_post(emu: Emulator, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    answer = urllib3.request(
        "POST", f"{emu.endpoint_url}/inputs/messages", body=body, headers=headers, retries=False
    )
    return answer.status, {"type": answer.headers.get("x-amzn-ErrorType"), **answer.json()}


@pytest.mark.parametrize("access_key", sorted(SECRETS))
def test_boto3_requests_signed_with_a_known_key_pass(verifying: Emulator, access_key: str) -> None:
    data = client(verifying, "iotevents-data", access_key, SECRETS[access_key])
    assert put(data)["BatchPutMessageErrorEntries"] == []
    control = client(verifying, "iotevents", access_key, SECRETS[access_key])
    control.create_input(inputName="Other", inputDefinition={"attributes": [{"jsonPath": "value"}]})
    # A path parameter and a query string are signed too.
    assert control.describe_input(inputName="Other")["input"]["inputConfiguration"]
    assert len(control.list_inputs(maxResults=1)["inputSummaries"]) == 1
    assert [m.message_id for m in verifying.processed()] == ["m1"]


def test_the_emulators_own_clients_pass(verifying: Emulator) -> None:
    assert put(verifying.client("iotevents-data"))["BatchPutMessageErrorEntries"] == []


def test_a_wrong_secret_is_refused_with_403_and_nothing_is_processed(verifying: Emulator) -> None:
    data = client(verifying, "iotevents-data", "testing", "not-the-secret")
    assert error_of(lambda: put(data)) == (403, "InvalidSignatureException")
    assert verifying.processed() == []
    assert verifying.requests() == []


def test_an_unknown_access_key_is_refused_as_unrecognized(verifying: Emulator) -> None:
    data = client(verifying, "iotevents-data", "who-is-this", "testing")
    assert error_of(lambda: put(data)) == (403, "UnrecognizedClientException")


def test_a_signature_scoped_to_another_region_is_refused(verifying: Emulator) -> None:
    data = client(verifying, "iotevents-data", "testing", "testing", region="eu-west-1")
    assert error_of(lambda: put(data)) == (403, "InvalidSignatureException")


def test_a_request_signed_right_passes_over_plain_http(verifying: Emulator) -> None:
    status, answer = raw_post(verifying, BODY, signed(verifying, BODY))
    assert (status, answer) == (200, {"type": None, "BatchPutMessageErrorEntries": []})


def test_a_body_changed_after_signing_is_refused(verifying: Emulator) -> None:
    tampered = BODY.replace(b'"m1"', b'"m2"')
    status, answer = raw_post(verifying, tampered, signed(verifying, BODY))
    assert (status, answer["type"]) == (403, "InvalidSignatureException:")
    assert "does not match" in answer["message"]
    assert verifying.processed() == []


def test_a_signed_header_changed_after_signing_is_refused(verifying: Emulator) -> None:
    headers = {**signed(verifying, BODY), "Content-Type": "application/x-amz-json-1.1"}
    status, answer = raw_post(verifying, BODY, headers)
    assert (status, answer["type"]) == (403, "InvalidSignatureException:")


def test_an_unsigned_request_is_refused_as_missing_authentication(verifying: Emulator) -> None:
    status, answer = raw_post(verifying, BODY, {"Content-Type": "application/json"})
    assert (status, answer["type"]) == (403, "MissingAuthenticationTokenException:")


def test_a_malformed_authorization_is_an_incomplete_signature(verifying: Emulator) -> None:
    headers = {**signed(verifying, BODY), "Authorization": "AWS4-HMAC-SHA256 Signature=abc"}
    status, answer = raw_post(verifying, BODY, headers)
    assert (status, answer["type"]) == (400, "IncompleteSignatureException:")


def test_the_emulators_own_paths_are_not_checked(verifying: Emulator) -> None:
    answer = urllib3.request("GET", f"{verifying.endpoint_url}/_emulator/stats", retries=False)
    assert answer.status == 200


def test_without_verification_any_signature_passes(emulator: Emulator) -> None:
    emulator.create_input(INPUT)
    data = client(emulator, "iotevents-data", "anyone", "anything")
    assert put(data)["BatchPutMessageErrorEntries"] == []


def test_verification_needs_at_least_one_key() -> None:
    with pytest.raises(ValueError, match="at least one access key"):
        Emulator(verify_signatures={})


def test_the_command_verifies_signatures_with_the_keys_it_is_given() -> None:
    command = [
        str(Path(sys.executable).parent / "ordered-sender"),
        "emulator",
        "--verify-signatures",
        "--credential",
        "cli-key:cli-secret",
        "--input",
        INPUT,
    ]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert child.stdout is not None
        url = child.stdout.readline().strip()
        good = client(url, "iotevents-data", "cli-key", "cli-secret")
        assert put(good)["BatchPutMessageErrorEntries"] == []
        bad = client(url, "iotevents-data", "cli-key", "testing")
        assert error_of(lambda: put(bad, "m2")) == (403, "InvalidSignatureException")
    finally:
        child.terminate()
        child.wait(timeout=10)


def test_the_command_refuses_a_credential_without_a_secret() -> None:
    command = [str(Path(sys.executable).parent / "ordered-sender"), "emulator"]
    done = subprocess.run(
        [*command, "--verify-signatures", "--credential", "only-a-key"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "ACCESS_KEY:SECRET" in done.stderr
