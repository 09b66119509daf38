"""Fault injection for BatchPutMessage: what can go wrong, how often, and seeded decisions.

``Faults`` is the configuration (frozen, validated, every field documented); ``FaultInjector``
turns it into decisions with its own ``random.Random``, so a run with the same seed and the same
sequence of requests injects the same faults. Faults apply to the data plane (BatchPutMessage)
only; control-plane calls are never faulted. The injector keeps the remaining counts of targeted
faults and is not thread-safe: the data plane calls it under its lock.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from ordered_sender.emulator.wire import ApiError

REQUEST_ERROR_CODES: Mapping[int, str] = {
    429: "ThrottlingException",
    500: "InternalFailureException",
    503: "ServiceUnavailableException",
}
"""HTTP status of each injectable whole-request error, with the code AWS answers for it."""

ENTRY_ERROR_CODES = (
    "ResourceNotFoundException",
    "InvalidRequestException",
    "InternalFailureException",
    "ServiceUnavailableException",
    "ThrottlingException",
)
"""The ``errorCode`` values the service model allows in BatchPutMessageErrorEntries."""


def _check_rate(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"Faults.{name} must be between 0 and 1, got {name}={value!r}")


def _check_entry_codes(owner: str, name: str, codes: Sequence[str]) -> None:
    for code in codes:
        if code not in ENTRY_ERROR_CODES:
            raise ValueError(
                f"{owner}.{name} contains {code!r}; allowed entry error codes: {ENTRY_ERROR_CODES}"
            )


@dataclass(frozen=True, slots=True)
class TargetedFault:
    """Make chosen messages fail with one entry error code, deterministically.

    Examples: ``TargetedFault("InvalidRequestException", message_id="m-7", count=None)`` fails
    message ``m-7`` every time it is sent; ``TargetedFault("ResourceNotFoundException",
    input_name="PressureInput", count=3)`` fails the next three messages of that input.
    """

    error_code: str
    """One of ``ENTRY_ERROR_CODES``, reported in BatchPutMessageErrorEntries."""
    message_id: str | None = None
    """Only messages with this messageId match (``None``: any messageId)."""
    input_name: str | None = None
    """Only messages for this input match (``None``: any input)."""
    count: int | None = 1
    """How many matching messages fail; ``None`` fails every match while these faults are set."""

    def __post_init__(self) -> None:
        _check_entry_codes("TargetedFault", "error_code", (self.error_code,))
        if self.count is not None and self.count < 1:
            raise ValueError(f"TargetedFault.count must be >= 1 or None, got count={self.count!r}")

    def matches(self, message_id: str, input_name: str) -> bool:
        return self.message_id in (None, message_id) and self.input_name in (None, input_name)


@dataclass(frozen=True, slots=True)
class Faults:
    """Which faults the emulator injects into BatchPutMessage; the default injects none."""

    request_error_rate: float = 0.0
    """Probability that a valid request fails as a whole (nothing is processed)."""
    request_error_codes: tuple[int, ...] = (429, 500, 503)
    """HTTP statuses picked from, uniformly, for a whole-request fault: 429, 500 and/or 503."""
    entry_error_rate: float = 0.0
    """Probability that one message is refused with an entry error (that message only)."""
    entry_error_codes: tuple[str, ...] = (
        "ThrottlingException",
        "ServiceUnavailableException",
        "InternalFailureException",
    )
    """Entry error codes picked from, uniformly, for a random entry fault."""
    latency_ms: tuple[int, int] = (0, 0)
    """Inclusive range of milliseconds added before answering, drawn uniformly per request."""
    drop_connection_rate: float = 0.0
    """Probability that, after processing, the connection is closed without an answer."""
    targeted: tuple[TargetedFault, ...] = ()
    """Deterministic entry faults, checked in order before the random ones."""

    def __post_init__(self) -> None:
        _check_rate("request_error_rate", self.request_error_rate)
        _check_rate("entry_error_rate", self.entry_error_rate)
        _check_rate("drop_connection_rate", self.drop_connection_rate)
        if not self.request_error_codes:
            raise ValueError("Faults.request_error_codes must name at least one status")
        for status in self.request_error_codes:
            if status not in REQUEST_ERROR_CODES:
                raise ValueError(
                    f"Faults.request_error_codes contains {status!r}; "
                    f"allowed statuses: {tuple(REQUEST_ERROR_CODES)}"
                )
        if not self.entry_error_codes:
            raise ValueError("Faults.entry_error_codes must name at least one code")
        _check_entry_codes("Faults", "entry_error_codes", self.entry_error_codes)
        low, high = self.latency_ms
        if not 0 <= low <= high:
            raise ValueError(
                f"Faults.latency_ms must be (low, high) with 0 <= low <= high, "
                f"got latency_ms={self.latency_ms!r}"
            )

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        document["targeted"] = [
            {f.name: getattr(rule, f.name) for f in fields(rule)} for rule in self.targeted
        ]
        return document

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> Faults:
        """Build from ``to_json``'s shape; omitted fields keep their defaults.

        Raises ``ValueError`` naming an unknown field or a bad value.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(document) - known)
        if unknown:
            raise ValueError(f"Unknown Faults field(s) {unknown}; known fields: {sorted(known)}")
        values = dict(document)
        for name in ("request_error_codes", "entry_error_codes", "latency_ms"):
            if name in values:
                values[name] = tuple(values[name])
        if "targeted" in values:
            values["targeted"] = tuple(_targeted_from_json(rule) for rule in values["targeted"])
        return cls(**values)


def _targeted_from_json(document: Mapping[str, Any]) -> TargetedFault:
    known = {f.name for f in fields(TargetedFault)}
    unknown = sorted(set(document) - known)
    if unknown:
        raise ValueError(f"Unknown TargetedFault field(s) {unknown}; known fields: {sorted(known)}")
    return TargetedFault(**document)


@dataclass(frozen=True, slots=True)
class EntryFault:
    """The decision to refuse one message."""

    error_code: str
    error_message: str
    targeted: bool
    """True when a ``TargetedFault`` chose it, False when the random entry fault did."""


@dataclass(slots=True)
class FaultInjector:
    """Seeded fault decisions; one instance per emulator, replaced faults keep the random stream."""

    faults: Faults
    random: random.Random
    _remaining: list[int | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.set_faults(self.faults)

    def set_faults(self, faults: Faults) -> None:
        """Switch to ``faults``; counts of targeted faults start afresh."""
        self.faults = faults
        self._remaining = [rule.count for rule in faults.targeted]

    def request_error(self) -> ApiError | None:
        """The whole-request error to answer instead of processing, if one is due."""
        if self.random.random() >= self.faults.request_error_rate:
            return None
        status = self.random.choice(self.faults.request_error_codes)
        code = REQUEST_ERROR_CODES[status]
        return ApiError(status, code, f"Injected fault: {code} for the whole request")

    def entry_error(self, message_id: str, input_name: str) -> EntryFault | None:
        """The entry error for one message, if a targeted or random fault is due."""
        for index, rule in enumerate(self.faults.targeted):
            remaining = self._remaining[index]
            if remaining == 0 or not rule.matches(message_id, input_name):
                continue
            if remaining is not None:
                self._remaining[index] = remaining - 1
            return EntryFault(
                rule.error_code,
                f"Injected fault: {rule.error_code} targeted at messageId={message_id!r} "
                f"inputName={input_name!r}",
                targeted=True,
            )
        if self.random.random() >= self.faults.entry_error_rate:
            return None
        code = self.random.choice(self.faults.entry_error_codes)
        return EntryFault(code, f"Injected fault: {code} for this message", targeted=False)

    def latency_seconds(self) -> float:
        low, high = self.faults.latency_ms
        return self.random.randint(low, high) / 1000.0

    def drop_connection(self) -> bool:
        return self.random.random() < self.faults.drop_connection_rate
