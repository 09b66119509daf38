"""The emulator's view of HTTP: requests, responses, API errors and the route table.

Handlers are plain callables from ``ApiRequest`` to ``ApiResponse``; they never see a socket, so
each one is tested without a server. Errors travel as ``ApiError`` and become the AWS rest-json
error shape (``x-amzn-ErrorType`` header plus a ``message`` body, which botocore reads) in exactly
one place, ``error_response``. This module does no I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

JsonObject = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ApiRequest:
    """One HTTP request as a handler sees it."""

    method: str
    """Upper-case HTTP method."""
    path: str
    """The URL path without its query string, still percent-encoded."""
    path_parameters: Mapping[str, str]
    """Values of the ``{name}`` segments of the matched route template, percent-decoded."""
    query: Mapping[str, str]
    """Query string parameters (the last value wins when one is repeated)."""
    body: bytes = b""

    def json_body(self) -> JsonObject:
        """The body as a JSON object; an empty body is ``{}``.

        Raises ``ApiError`` (InvalidRequestException) when the body is not a JSON object.
        """
        if not self.body:
            return {}
        try:
            document = json.loads(self.body)
        except ValueError as error:
            raise ApiError.invalid_request(f"The request body is not JSON: {error}") from error
        if not isinstance(document, dict):
            raise ApiError.invalid_request(
                f"The request body must be a JSON object, got {type(document).__name__}"
            )
        return document


@dataclass(frozen=True, slots=True)
class ApiResponse:
    """What a handler answers; the server turns it into bytes on the wire."""

    status: int
    body: JsonObject | None = None
    """Serialized as JSON; ``None`` sends an empty body."""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay_seconds: float = 0.0
    """Wait this long before answering (injected latency)."""
    drop_connection: bool = False
    """Close the connection without answering (the client cannot know the outcome)."""

    def encoded_body(self) -> bytes:
        return b"" if self.body is None else json.dumps(self.body).encode()


class ApiError(Exception):
    """An AWS error answered for a whole request (botocore raises it as ``ClientError``).

    A plain exception rather than a frozen dataclass: Python and contextlib assign
    ``__traceback__`` on raised exceptions, which a frozen instance would refuse.
    """

    def __init__(
        self, status: int, code: str, message: str, extra: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(status, code, message)
        self.status = status
        self.code = code
        self.message = message
        self.extra: Mapping[str, str] = dict(extra or {})
        """More members of the error shape, e.g. ``resourceId`` of ResourceAlreadyExists."""

    def __str__(self) -> str:
        return f"{self.code} ({self.status}): {self.message}"

    @classmethod
    def invalid_request(cls, message: str) -> ApiError:
        return cls(400, "InvalidRequestException", message)

    @classmethod
    def not_found(cls, message: str) -> ApiError:
        return cls(404, "ResourceNotFoundException", message)


def error_response(error: ApiError) -> ApiResponse:
    """The rest-json error shape: botocore takes the code from ``x-amzn-ErrorType``."""
    return ApiResponse(
        status=error.status,
        body={"message": error.message, **error.extra},
        headers={"x-amzn-ErrorType": f"{error.code}:"},
    )


Handler = Callable[[ApiRequest], ApiResponse]
"""A route handler: takes the request, returns the response or raises ``ApiError``."""

_PARAMETER = re.compile(r"^\{(\w+)\}$")


@dataclass(frozen=True, slots=True)
class Route:
    """A method plus a path template such as ``/inputs/{inputName}``, and its handler."""

    method: str
    template: str
    handler: Handler

    def __post_init__(self) -> None:
        if not self.template.startswith("/"):
            raise ValueError(f"Route template must start with '/', got template={self.template!r}")
        if self.method != self.method.upper():
            raise ValueError(f"Route method must be upper case, got method={self.method!r}")

    @property
    def segments(self) -> tuple[str, ...]:
        return tuple(self.template.strip("/").split("/"))

    @property
    def literal_count(self) -> int:
        """How many segments are fixed text; more specific routes are tried first."""
        return sum(1 for segment in self.segments if not _PARAMETER.match(segment))

    def match(self, segments: tuple[str, ...]) -> dict[str, str] | None:
        """The path parameters if ``segments`` fit this template, otherwise ``None``."""
        own = self.segments
        if len(own) != len(segments):
            return None
        parameters: dict[str, str] = {}
        for pattern, value in zip(own, segments, strict=True):
            parameter = _PARAMETER.match(pattern)
            if parameter:
                if not value:
                    return None
                parameters[parameter.group(1)] = unquote(value)
            elif pattern != value:
                return None
        return parameters


class Router:
    """Routes by method and path template; other modules add routes without touching handlers.

    ``POST /inputs/messages`` (data plane) and ``POST /inputs`` / ``GET /inputs/{inputName}``
    (control plane) share a prefix: among the templates that fit, the one with the most literal
    segments wins, so registration order does not matter.
    """

    def __init__(self) -> None:
        self._routes: list[Route] = []

    def add(self, method: str, template: str, handler: Handler) -> None:
        route = Route(method, template, handler)
        if any(r.method == route.method and r.template == route.template for r in self._routes):
            raise ValueError(f"A route for {method} {template} is already registered")
        self._routes.append(route)
        self._routes.sort(key=lambda r: r.literal_count, reverse=True)

    def resolve(self, method: str, path: str) -> tuple[Handler, dict[str, str]]:
        """The handler and path parameters for a request; ``ApiError`` when nothing fits.

        A path that fits a template under another method is answered 405, otherwise 404, with
        the code AWS's front end uses for unknown operations.
        """
        segments = tuple(path.strip("/").split("/"))
        path_fits = False
        for route in self._routes:
            parameters = route.match(segments)
            if parameters is None:
                continue
            if route.method == method:
                return route.handler, parameters
            path_fits = True
        if path_fits:
            raise ApiError(405, "UnknownOperationException", f"{method} is not allowed on {path}")
        raise ApiError(404, "UnknownOperationException", f"No operation at {method} {path}")
