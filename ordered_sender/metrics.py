"""Prometheus metrics of a sender, read from ``OrderedSender.stats()`` at each scrape.

Needs the optional extra: ``pip install 'ordered-sender[metrics]'`` (prometheus_client).
``SenderCollector`` goes into any prometheus_client registry an application has; ``MetricsServer``
serves a registry of its own over HTTP (what ``ordered-sender run --metrics-port`` does). Nothing
is counted twice: the collector keeps no state, each scrape takes one snapshot.

Metrics (counters since the sender was opened, gauges of the outbox at the scrape):
``ordered_sender_messages_enqueued_total``, ``ordered_sender_messages_delivered_total``,
``ordered_sender_retries_total{error_code}``, ``ordered_sender_messages_dead_lettered_total``,
``ordered_sender_lane_pauses_total``, ``ordered_sender_request_duration_seconds`` (a summary: count
and sum since open, quantiles 0.5/0.9/0.99 over the latest requests), and the gauges
``ordered_sender_pending_messages``, ``ordered_sender_pending_bytes``, ``ordered_sender_lanes``,
``ordered_sender_paused_lanes``, ``ordered_sender_blocked_messages``,
``ordered_sender_dead_letters``, ``ordered_sender_oldest_pending_age_seconds`` (0 when nothing is
pending).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Self

from ordered_sender.errors import OrderedSenderError
from ordered_sender.events import log
from ordered_sender.stats import SenderStats

try:
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        Metric,
        SummaryMetricFamily,
    )
    from prometheus_client.registry import Collector
    from prometheus_client.samples import Sample
except ImportError as missing:  # pragma: no cover - depends on the installation
    raise ImportError(
        "ordered_sender.metrics needs prometheus_client: pip install 'ordered-sender[metrics]'"
    ) from missing

PREFIX = "ordered_sender_"
QUANTILES = (("0.5", "p50"), ("0.9", "p90"), ("0.99", "p99"))
"""Summary quantile labels and the RequestLatency field each is read from."""

StatsSource = Callable[[], SenderStats]


class SenderCollector(Collector):
    """Turns one snapshot of ``stats`` (``sender.stats``, say) into metrics at each scrape.

    ``stats`` may be given later with ``watch`` (a server started before its sender); until
    then a scrape has no sender metrics. When the outbox cannot be read (StoreError, a closed
    sender), the scrape has none either and a ``metrics.unavailable`` warning says why.
    """

    def __init__(self, stats: StatsSource | None = None) -> None:
        self._stats = stats

    def watch(self, stats: StatsSource) -> None:
        self._stats = stats

    def describe(self) -> Iterator[Metric]:
        """The metric names, without reading the outbox (for the registry's duplicate check)."""
        return _families(None)

    def collect(self) -> Iterator[Metric]:
        source = self._stats
        if source is None:
            return iter(())
        try:
            stats = source()
        except OrderedSenderError as error:
            log.warning("metrics.unavailable", error=str(error))
            return iter(())
        return _families(stats)


def _families(stats: SenderStats | None) -> Iterator[Metric]:
    """Every metric family, with its samples when ``stats`` is given."""
    counters = {
        "messages_enqueued": ("Messages put through this sender.", "enqueued"),
        "messages_delivered": ("Messages IoT Events acknowledged.", "delivered"),
        "messages_dead_lettered": ("Messages moved to the dead letters.", "dead_lettered"),
        "lane_pauses": ("Times a lane was paused by a permanent failure.", "lanes_paused"),
    }
    for name, (documentation, field) in counters.items():
        value = None if stats is None else getattr(stats, field)
        yield CounterMetricFamily(PREFIX + name, documentation, value=value)
    retries = CounterMetricFamily(
        PREFIX + "retries", "Retries scheduled, by error code.", labels=["error_code"]
    )
    for code, count in sorted((stats.retried if stats else {}).items()):
        retries.add_metric([code], count)
    yield retries
    yield _latency(stats)
    gauges = {
        "pending_messages": ("Messages not yet delivered.", "pending"),
        "pending_bytes": ("Payload bytes of the pending messages.", "pending_bytes"),
        "lanes": ("Lanes with pending messages.", "lanes"),
        "paused_lanes": ("Lanes paused, waiting for resume.", "paused_lanes"),
        "blocked_messages": ("Pending messages in paused lanes.", "blocked"),
        "dead_letters": ("Messages in the dead letters.", "dead_letters"),
        "oldest_pending_age_seconds": (
            "Seconds since the oldest pending message was put; 0 when none is pending.",
            "oldest_pending_age",
        ),
    }
    for name, (documentation, field) in gauges.items():
        value = None if stats is None else (getattr(stats, field) or 0)
        yield GaugeMetricFamily(PREFIX + name, documentation, value=value)


def _latency(stats: SenderStats | None) -> SummaryMetricFamily:
    name = PREFIX + "request_duration_seconds"
    summary = SummaryMetricFamily(
        name,
        "BatchPutMessage request latency: count and sum since open, quantiles over the latest.",
        count_value=None if stats is None else stats.requests,
        sum_value=None if stats is None else stats.request_seconds,
    )
    if stats is not None:
        for label, field in QUANTILES:
            value = getattr(stats.request_latency, field)
            if value is not None:
                summary.samples.append(Sample(name, {"quantile": label}, value))
    return summary


class MetricsServer:
    """Serves ``/metrics`` over HTTP from a daemon thread, for one sender's stats.

    Listens at once (``port`` 0 picks a free port: see ``port``), so that a port in use fails
    before anything else starts; raises OSError then. ``close()`` stops it.
    """

    def __init__(self, port: int, host: str = "0.0.0.0", stats: StatsSource | None = None) -> None:
        self.collector = SenderCollector(stats)
        registry = CollectorRegistry(auto_describe=False)
        registry.register(self.collector)
        self._server, self._thread = start_http_server(port, host, registry)
        self.host = host

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    def watch(self, stats: StatsSource) -> None:
        """Serve these stats from now on (``sender.stats``)."""
        self.collector.watch(stats)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
