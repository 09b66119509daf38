"""When the sender may send at all: holds for the whole sender, not one lane. Pure: no I/O, time is
an argument.

Three things can make every request pointless, whatever its lanes:
- the credentials are refused (every request would be refused the same way);
- the endpoint is down or failing whole requests (refused or dropped connections, 5xx, 429, an
  answer that is not IoT Events'): one probe at a time, spaced by a growing hold, instead of one
  request per lane per backoff, so a dead endpoint sees a request every few seconds whatever the
  lane count, and every lane goes again as soon as a probe gets through;
- the outbox cannot record what came back (the store's hold; see sender.py).

Each is a ``Hold``: after the first failure in a row it lasts ``first`` seconds, doubling with each
further failure up to ``most``; any success ends it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True, slots=True)
class Hold:
    first: float
    """Seconds of the hold after the first failure in a row."""
    most: float
    """The longest hold, however many failures in a row."""
    failures: int = 0
    """Failures in a row so far."""
    until: float = 0.0
    """Nothing may be sent before this time (in whatever clock the caller's ``now`` is)."""

    @property
    def failing(self) -> bool:
        return self.failures > 0

    @property
    def seconds(self) -> float:
        """The length of the current hold, 0 when not failing."""
        if not self.failing:
            return 0.0
        return min(self.most, self.first * 2.0 ** (self.failures - 1))

    def failed(self, now: float) -> Hold:
        longer = replace(self, failures=self.failures + 1)
        return replace(longer, until=now + longer.seconds)

    def succeeded(self) -> Hold:
        if self.failures == 0 and self.until == 0.0:
            return self  # the common case, once per request: nothing to clear
        return replace(self, failures=0, until=0.0)


def requests_allowed(
    *, now: float, free_workers: int, in_flight: int, credentials: Hold, endpoint: Hold
) -> int:
    """How many requests may start now: none during a hold; while the endpoint is failing, one
    probe at a time; otherwise one per free worker."""
    if now < credentials.until or now < endpoint.until:
        return 0
    if endpoint.failing:
        return 1 if in_flight == 0 else 0
    return max(free_workers, 0)


def held_until(credentials: Hold, endpoint: Hold) -> float:
    """The time before which nothing is sent (0 when nothing holds)."""
    return max(credentials.until, endpoint.until)


@dataclass(frozen=True, slots=True)
class Holds:
    """The sender's two holds on sending, moved by each answer."""

    credentials: Hold
    endpoint: Hold

    @property
    def until(self) -> float:
        return held_until(self.credentials, self.endpoint)

    def allowed(self, *, now: float, free_workers: int, in_flight: int) -> int:
        return requests_allowed(
            now=now,
            free_workers=free_workers,
            in_flight=in_flight,
            credentials=self.credentials,
            endpoint=self.endpoint,
        )

    def after(self, *, credentials_refused: bool, endpoint_failed: bool, now: float) -> Holds:
        """The holds after an answer: a refusal of the credentials holds (and says nothing of the
        endpoint); an endpoint failure holds the endpoint; any other answer releases both."""
        if credentials_refused:
            return replace(self, credentials=self.credentials.failed(now))
        endpoint = self.endpoint.failed(now) if endpoint_failed else self.endpoint.succeeded()
        return Holds(self.credentials.succeeded(), endpoint)


@dataclass(frozen=True, slots=True)
class Pace:
    """A token bucket of requests: ``rate`` a second, at most ``burst`` at once."""

    rate: float
    burst: float
    tokens: float = 0.0
    at: float | None = None
    """When ``tokens`` was counted; None: never used, a full bucket."""

    def available(self, now: float) -> int:
        return int(self._tokens(now))

    def took(self, now: float, requests: int) -> Pace:
        return replace(self, tokens=self._tokens(now) - requests, at=now)

    def next_at(self, now: float) -> float:
        """When the next request may start (``now`` if one may already)."""
        missing = 1.0 - self._tokens(now)
        return now if missing <= 0 else now + missing / self.rate

    def _tokens(self, now: float) -> float:
        if self.at is None:
            return self.burst
        return min(self.burst, self.tokens + max(now - self.at, 0.0) * self.rate)
