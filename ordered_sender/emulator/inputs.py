"""Inputs: the registry and the control-plane API over it (boto3 client ``"iotevents"``).

CreateInput, DescribeInput, ListInputs, UpdateInput and DeleteInput, validated against the
botocore service model and answered with the documented shapes and errors. Other modules read
the registry (BatchPutMessage asks whether an input exists; a detector-model runtime checks the
inputs its models name) and may veto deleting an input that is in use with a delete guard.
"""

from __future__ import annotations

import base64
import binascii
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ordered_sender.emulator.shapes import validate_input
from ordered_sender.emulator.wire import ApiError, ApiRequest, ApiResponse, JsonObject, Router

ACCOUNT_ID = "123456789012"
"""The account the emulator pretends to be, used in ARNs."""

LIST_INPUTS_DEFAULT_MAX_RESULTS = 250
"""Page size of ListInputs without ``maxResults`` (the service model's maximum)."""

DeleteGuard = Callable[[str], str | None]
"""Given an input name, a reason it is in use (DeleteInput then fails), or ``None``."""


@dataclass(frozen=True, slots=True)
class InputResource:
    """One input, as DescribeInput shows it."""

    name: str
    arn: str
    attribute_json_paths: tuple[str, ...]
    description: str | None
    created_at: float
    updated_at: float

    def configuration(self) -> JsonObject:
        document: JsonObject = {
            "inputName": self.name,
            "inputArn": self.arn,
            "creationTime": self.created_at,
            "lastUpdateTime": self.updated_at,
            "status": "ACTIVE",
        }
        if self.description is not None:
            document["inputDescription"] = self.description
        return document

    def definition(self) -> JsonObject:
        return {"attributes": [{"jsonPath": path} for path in self.attribute_json_paths]}


class InputRegistry:
    """The inputs that exist; safe to use from any thread."""

    def __init__(self, clock: Callable[[], float], region: str) -> None:
        self._clock = clock
        self._region = region
        self._lock = threading.Lock()
        self._inputs: dict[str, InputResource] = {}
        self._delete_guards: list[DeleteGuard] = []

    def arn(self, name: str) -> str:
        return f"arn:aws:iotevents:{self._region}:{ACCOUNT_ID}:input/{name}"

    def exists(self, name: str) -> bool:
        with self._lock:
            return name in self._inputs

    def get(self, name: str) -> InputResource:
        """The input called ``name``; ``ApiError`` ResourceNotFoundException if there is none."""
        with self._lock:
            resource = self._inputs.get(name)
        if resource is None:
            raise ApiError.not_found(f"Input {name!r} does not exist")
        return resource

    def all(self) -> list[InputResource]:
        """Every input, sorted by name."""
        with self._lock:
            return sorted(self._inputs.values(), key=lambda resource: resource.name)

    def create(
        self, name: str, attribute_json_paths: Sequence[str], description: str | None = None
    ) -> InputResource:
        """Add an input; ResourceAlreadyExistsException (409) if the name is taken."""
        now = self._clock()
        resource = InputResource(
            name, self.arn(name), tuple(attribute_json_paths), description, now, now
        )
        with self._lock:
            if name in self._inputs:
                raise ApiError(
                    409,
                    "ResourceAlreadyExistsException",
                    f"Input {name!r} already exists",
                    {"resourceId": name, "resourceArn": resource.arn},
                )
            self._inputs[name] = resource
        return resource

    def update(
        self, name: str, attribute_json_paths: Sequence[str], description: str | None
    ) -> InputResource:
        with self._lock:
            current = self._inputs.get(name)
            if current is None:
                raise ApiError.not_found(f"Input {name!r} does not exist")
            updated = replace(
                current,
                attribute_json_paths=tuple(attribute_json_paths),
                description=description,
                updated_at=self._clock(),
            )
            self._inputs[name] = updated
        return updated

    def export(self) -> list[JsonObject]:
        """Every input as a JSON document, for ``--state``."""
        return [
            {
                "name": resource.name,
                "attributeJsonPaths": list(resource.attribute_json_paths),
                "description": resource.description,
                "createdAt": resource.created_at,
                "updatedAt": resource.updated_at,
            }
            for resource in self.all()
        ]

    def restore(self, documents: Sequence[JsonObject]) -> None:
        """Replace the inputs with those of an ``export`` document."""
        restored = {
            document["name"]: InputResource(
                document["name"],
                self.arn(document["name"]),
                tuple(document["attributeJsonPaths"]),
                document["description"],
                document["createdAt"],
                document["updatedAt"],
            )
            for document in documents
        }
        with self._lock:
            self._inputs = restored

    def add_delete_guard(self, guard: DeleteGuard) -> None:
        self._delete_guards.append(guard)

    def delete(self, name: str) -> None:
        """Remove an input; 404 if missing, 409 ResourceInUseException if a guard objects."""
        self.get(name)
        for guard in self._delete_guards:
            reason = guard(name)
            if reason is not None:
                raise ApiError(409, "ResourceInUseException", f"Input {name!r} is in use: {reason}")
        with self._lock:
            if self._inputs.pop(name, None) is None:
                raise ApiError.not_found(f"Input {name!r} does not exist")


class InputApi:
    """Route handlers of the input operations of the ``iotevents`` control plane."""

    def __init__(self, registry: InputRegistry) -> None:
        self._registry = registry

    def register(self, router: Router) -> None:
        router.add("POST", "/inputs", self.create_input)
        router.add("GET", "/inputs", self.list_inputs)
        router.add("GET", "/inputs/{inputName}", self.describe_input)
        router.add("PUT", "/inputs/{inputName}", self.update_input)
        router.add("DELETE", "/inputs/{inputName}", self.delete_input)

    def create_input(self, request: ApiRequest) -> ApiResponse:
        document = request.json_body()
        validate_input("iotevents", "CreateInput", document)
        resource = self._registry.create(
            document["inputName"],
            _json_paths(document),
            document.get("inputDescription"),
        )
        return ApiResponse(201, {"inputConfiguration": resource.configuration()})

    def describe_input(self, request: ApiRequest) -> ApiResponse:
        name = _named(request, "DescribeInput", {})
        resource = self._registry.get(name)
        return ApiResponse(
            200,
            {
                "input": {
                    "inputConfiguration": resource.configuration(),
                    "inputDefinition": resource.definition(),
                }
            },
        )

    def update_input(self, request: ApiRequest) -> ApiResponse:
        document = request.json_body()
        name = _named(request, "UpdateInput", document)
        resource = self._registry.update(
            name, _json_paths(document), document.get("inputDescription")
        )
        return ApiResponse(200, {"inputConfiguration": resource.configuration()})

    def delete_input(self, request: ApiRequest) -> ApiResponse:
        self._registry.delete(_named(request, "DeleteInput", {}))
        return ApiResponse(200, {})

    def list_inputs(self, request: ApiRequest) -> ApiResponse:
        document: JsonObject = {}
        if "maxResults" in request.query:
            document["maxResults"] = _integer("maxResults", request.query["maxResults"])
        if "nextToken" in request.query:
            document["nextToken"] = request.query["nextToken"]
        validate_input("iotevents", "ListInputs", document)
        page_size = document.get("maxResults", LIST_INPUTS_DEFAULT_MAX_RESULTS)
        resources = self._registry.all()
        start = 0
        if "nextToken" in document:
            after = _name_from_token(document["nextToken"])
            start = sum(1 for resource in resources if resource.name <= after)
        page = resources[start : start + page_size]
        body: JsonObject = {"inputSummaries": [resource.configuration() for resource in page]}
        if start + page_size < len(resources):
            body["nextToken"] = _token_after(page[-1].name)
        return ApiResponse(200, body)


def _named(request: ApiRequest, operation: str, document: JsonObject) -> str:
    """Validate a request whose input name is in the path; returns the name."""
    name = request.path_parameters["inputName"]
    validate_input("iotevents", operation, {**document, "inputName": name})
    return name


def _json_paths(document: JsonObject) -> list[str]:
    attributes: list[Any] = document["inputDefinition"]["attributes"]
    return [attribute["jsonPath"] for attribute in attributes]


def _integer(name: str, text: str) -> int:
    try:
        return int(text)
    except ValueError as error:
        raise ApiError.invalid_request(
            f"Value '{text}' at '{name}' failed to satisfy constraint: Member must be an integer"
        ) from error


def _token_after(name: str) -> str:
    """Pages are ordered by name, so the last name of a page is where the next one starts."""
    return base64.urlsafe_b64encode(name.encode()).decode()


def _name_from_token(token: str) -> str:
    try:
        return base64.b64decode(token, altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as error:
        raise ApiError.invalid_request(
            f"Value '{token}' at 'nextToken' is not a token returned by ListInputs"
        ) from error
