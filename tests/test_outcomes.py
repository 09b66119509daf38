"""Every row of the outcome table: what came back decides each message's fate."""

from __future__ import annotations

import botocore.model
import botocore.session
import pytest

from ordered_sender.outcomes import (
    TRANSIENT_ENTRY_CODES,
    TRANSIENT_REQUEST_CODES,
    OutcomeKind,
    classify,
)
from ordered_sender.transport import BatchResponse, EntryError, RequestError, RequestErrorKind

IDS = ["a", "b", "c"]


def test_200_without_entries_means_every_message_delivered() -> None:
    outcomes = classify(BatchResponse(), IDS)
    assert {i: o.kind for i, o in outcomes.items()} == dict.fromkeys(IDS, OutcomeKind.DELIVERED)


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("ThrottlingException", OutcomeKind.TRANSIENT),
        ("ServiceUnavailableException", OutcomeKind.TRANSIENT),
        ("InternalFailureException", OutcomeKind.TRANSIENT),
        ("ResourceNotFoundException", OutcomeKind.PERMANENT),
        ("InvalidRequestException", OutcomeKind.PERMANENT),
    ],
)
def test_200_with_an_entry_fails_only_the_named_message(code: str, kind: OutcomeKind) -> None:
    response = BatchResponse(entry_errors=(EntryError("b", code, "why"),))
    outcomes = classify(response, IDS)
    assert outcomes["a"].kind is OutcomeKind.DELIVERED
    assert outcomes["c"].kind is OutcomeKind.DELIVERED
    assert outcomes["b"].kind is kind
    assert outcomes["b"].error_code == code


def test_an_entry_for_an_id_not_sent_changes_nothing() -> None:
    response = BatchResponse(entry_errors=(EntryError("zzz", "InvalidRequestException", ""),))
    assert all(o.kind is OutcomeKind.DELIVERED for o in classify(response, IDS).values())


@pytest.mark.parametrize(
    ("error", "ids", "kind"),
    [
        (
            RequestError(RequestErrorKind.SERVICE, "ThrottlingException", "", 429),
            IDS,
            OutcomeKind.TRANSIENT,
        ),
        (
            RequestError(RequestErrorKind.SERVICE, "InternalFailureException", "", 500),
            IDS,
            OutcomeKind.TRANSIENT,
        ),
        (
            RequestError(RequestErrorKind.SERVICE, "ServiceUnavailableException", "", 503),
            IDS,
            OutcomeKind.TRANSIENT,
        ),
        (RequestError(RequestErrorKind.SERVICE, "Whatever", "", 502), IDS, OutcomeKind.TRANSIENT),
        (
            RequestError(RequestErrorKind.CONNECTION, "ReadTimeoutError", ""),
            IDS,
            OutcomeKind.TRANSIENT,
        ),
        (
            RequestError(RequestErrorKind.CONNECTION, "ConnectionClosedError", ""),
            ["a"],
            OutcomeKind.TRANSIENT,
        ),
        (
            RequestError(RequestErrorKind.SERVICE, "InvalidRequestException", "", 400),
            IDS,
            OutcomeKind.ISOLATE,
        ),
        (
            RequestError(RequestErrorKind.SERVICE, "InvalidRequestException", "", 400),
            ["a"],
            OutcomeKind.PERMANENT,
        ),
        (
            RequestError(RequestErrorKind.CREDENTIALS, "AccessDeniedException", "", 403),
            IDS,
            OutcomeKind.HALT,
        ),
        (
            RequestError(RequestErrorKind.CREDENTIALS, "NoCredentialsError", ""),
            ["a"],
            OutcomeKind.HALT,
        ),
        (
            RequestError(RequestErrorKind.UNEXPECTED, "ResponseParserError", ""),
            IDS,
            OutcomeKind.TRANSIENT,
        ),
        (
            RequestError(RequestErrorKind.UNEXPECTED, "UnexpectedResponse", "", 404),
            ["a"],
            OutcomeKind.TRANSIENT,
        ),
        (
            RequestError(RequestErrorKind.INVALID_REQUEST, "ParamValidationError", ""),
            IDS,
            OutcomeKind.ISOLATE,
        ),
        (
            RequestError(RequestErrorKind.INVALID_REQUEST, "ParamValidationError", ""),
            ["a"],
            OutcomeKind.PERMANENT,
        ),
        (
            RequestError(RequestErrorKind.SERVICE, "LimitExceeded", "", 400),
            ["a"],
            OutcomeKind.PERMANENT,
        ),
    ],
)
def test_whole_request_errors(error: RequestError, ids: list[str], kind: OutcomeKind) -> None:
    outcomes = classify(BatchResponse(request_error=error), ids)
    assert set(outcomes) == set(ids)
    assert {o.kind for o in outcomes.values()} == {kind}
    assert {o.error_code for o in outcomes.values()} == {error.code}


def _batch_put_message_model() -> botocore.model.OperationModel:
    service = botocore.session.get_session().get_service_model("iotevents-data")
    return service.operation_model("BatchPutMessage")


def test_transient_request_codes_are_the_service_models_errors_but_invalid_request() -> None:
    documented = {shape.error_code for shape in _batch_put_message_model().error_shapes}
    assert documented - {"InvalidRequestException"} == TRANSIENT_REQUEST_CODES


def test_transient_entry_codes_are_the_service_models_codes_but_the_permanent_ones() -> None:
    service = botocore.session.get_session().get_service_model("iotevents-data")
    documented = set(service.shape_for("ErrorCode").enum)
    permanent = {"ResourceNotFoundException", "InvalidRequestException"}
    assert documented - permanent == TRANSIENT_ENTRY_CODES
