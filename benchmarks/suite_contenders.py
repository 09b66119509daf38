"""One contender of the benchmark suite, in a process of its own, so its CPU and RSS are its own.

    python benchmarks/suite_contenders.py '<RunSpec as JSON>'

Started by ``suite.py`` with the endpoint in ``AWS_ENDPOINT_URL``. It sends the run's messages
and prints one JSON line (``ContenderResult``): when its clock started, the CPU it used from then
on, its peak RSS, and what it knows of each message's latency (per call for the boto3 loops; the
time each message became available for ordered_sender, whose acknowledgement time the suite reads
from the endpoint's record). It judges nothing itself: ``suite_verify.py`` does, from that record.

Message ``index`` of a run goes to lane ``index % lanes`` and is that lane's ``index // lanes``-th
message; its id says both, so order can be checked from the endpoint's record alone.
"""

from __future__ import annotations

import http.client
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

COMPLETION_POLL_SECONDS = 0.02
"""How often an ordered_sender run asks the endpoint whether everything arrived. Read from the
endpoint rather than with flush(), so the instrument does not depend on what it measures."""

BACKLOG_PUT_CHUNK = 500

CALL_LATENCY = "call start to response"
PUT_LATENCY = "put() returned to processed"


@dataclass(frozen=True, slots=True)
class RunSpec:
    """What one contender process does."""

    contender: str
    """``naive``, ``unordered`` or ``ordered``."""
    scenario: str
    """``backlog``; for ordered also ``stream-thread`` and ``stream-process``."""
    lanes: int
    messages: int
    prefix: str
    """Starts every message id of the run, so the endpoint's record of it can be picked out."""
    endpoint: str
    transport: str = "boto3"
    """ordered_sender's transport: ``boto3`` (a boto3 client) or ``http`` (the lean one, the
    library's default)."""
    concurrency: int = 4
    """Requests in flight: ordered_sender's ``SenderConfig.concurrency``, the unordered loop's
    threads (the naive loop has one by definition)."""


@dataclass(slots=True)
class ContenderResult:
    started: float
    """``time.time()`` when the clock started."""
    cpu_seconds: float
    """User + system CPU of this process from the clock's start to the end of the run."""
    max_rss_kb: int
    latency_measure: str
    """What the latencies time: ``call start to response``, ``delivery start to processed``
    (a backlog: all of it is available when the clock starts) or ``put() returned to
    processed``."""
    call_latencies_ms: list[float] = field(default_factory=list)
    """Naive and unordered: each call, start to response."""
    available_at: dict[str, float] = field(default_factory=dict)
    """Ordered: when each message could be sent (put() returned, or the clock started for a
    backlog), by message id."""
    put_seconds: float | None = None
    """Streaming: how long the producer took to put every message."""
    producer_cpu_seconds: float | None = None
    """Streaming from another process: that producer's CPU."""


def message_id(prefix: str, lane: int, position: int) -> str:
    return f"{prefix}-{lane}-{position}"


def input_name(lane: int) -> str:
    return f"Lane{lane}"


def run_messages(spec: RunSpec) -> Iterator[tuple[str, str, bytes]]:
    """(message id, input name, payload) of every message, in the order they are produced."""
    for index in range(spec.messages):
        lane, position = index % spec.lanes, index // spec.lanes
        payload = json.dumps({"lane": lane, "position": position}).encode()
        yield message_id(spec.prefix, lane, position), input_name(lane), payload


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def max_rss_kb() -> int:
    """Peak RSS of this process's own memory. Not ``ru_maxrss``: Linux carries that over
    ``execve`` from the forked parent, so every child would report at least the suite's size."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def boto3_client() -> Any:
    """A plain boto3 client, as a user without this library writes it (endpoint from the
    environment)."""
    import boto3

    return boto3.session.Session().client("iotevents-data")


def naive(spec: RunSpec) -> ContenderResult:
    """The documented safe way: one message per call, each call waited for."""
    client = boto3_client()
    batch = list(run_messages(spec))
    latencies = []
    started, cpu_before = time.time(), cpu_seconds()
    for identifier, name, payload in batch:
        call_started = time.perf_counter()
        answer = client.batch_put_message(
            messages=[{"messageId": identifier, "inputName": name, "payload": payload}]
        )
        latencies.append((time.perf_counter() - call_started) * 1000)
        if answer["BatchPutMessageErrorEntries"]:
            raise RuntimeError(f"the endpoint refused {answer['BatchPutMessageErrorEntries']}")
    return ContenderResult(
        started, cpu_seconds() - cpu_before, max_rss_kb(), CALL_LATENCY, latencies
    )


def unordered(spec: RunSpec) -> ContenderResult:
    """Ten messages per call from ``concurrency`` threads: no order, no durability."""
    client = boto3_client()
    messages = list(run_messages(spec))
    requests = [messages[start : start + 10] for start in range(0, len(messages), 10)]
    latencies: list[float] = []
    failures: list[object] = []
    lock = threading.Lock()
    next_request = iter(requests)

    def work() -> None:
        while True:
            with lock:
                request = next(next_request, None)
            if request is None:
                return
            body = [{"messageId": i, "inputName": n, "payload": p} for i, n, p in request]
            call_started = time.perf_counter()
            answer = client.batch_put_message(messages=body)
            elapsed = (time.perf_counter() - call_started) * 1000
            with lock:
                latencies.append(elapsed)
                failures.extend(answer["BatchPutMessageErrorEntries"])

    threads = [threading.Thread(target=work) for _ in range(spec.concurrency)]
    started, cpu_before = time.time(), cpu_seconds()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise RuntimeError(f"the endpoint refused {failures[:3]}")
    return ContenderResult(
        started, cpu_seconds() - cpu_before, max_rss_kb(), CALL_LATENCY, latencies
    )


def sender_options(name: str) -> dict[str, Any]:
    """OrderedSender's arguments for one transport: a boto3 client (sent through the boto3
    transport), or the lean HTTP transport. Either is named: the sender's default is the lean
    one, so leaving both out would measure it twice."""
    if name == "boto3":
        return {"client": boto3_client()}
    if name == "http":
        from suite_transports import http_transport

        return {"transport": http_transport(os.environ["AWS_ENDPOINT_URL"])}
    raise ValueError(f"unknown transport {name!r}: boto3 or http")


_STATS_CONNECTIONS: dict[str, http.client.HTTPConnection] = {}


def processed_count(endpoint: str) -> int:
    """What the endpoint processed so far, over one kept-alive connection: polled every 20 ms
    during a run, so it must cost the contender's process (and its GIL) next to nothing."""
    connection = _STATS_CONNECTIONS.get(endpoint)
    if connection is None:
        address = urllib.parse.urlsplit(endpoint)
        host = address.hostname or "127.0.0.1"
        connection = http.client.HTTPConnection(host, address.port, timeout=30)
        _STATS_CONNECTIONS[endpoint] = connection
    try:
        connection.request("GET", "/_emulator/stats")
        answer = connection.getresponse()
        body = answer.read()
    except (OSError, http.client.HTTPException):
        connection.close()  # the next request opens it again
        connection.request("GET", "/_emulator/stats")
        answer = connection.getresponse()
        body = answer.read()
    return int(json.loads(body)["messages_processed"])


def wait_processed(endpoint: str, target: int) -> None:
    while processed_count(endpoint) < target:
        time.sleep(COMPLETION_POLL_SECONDS)


def ordered(spec: RunSpec) -> ContenderResult:
    """OrderedSender with its default configuration (durable: synchronous=FULL)."""
    from ordered_sender import OrderedSender

    messages = list(run_messages(spec))
    target = processed_count(spec.endpoint) + len(messages)
    with tempfile.TemporaryDirectory(prefix="ordered-sender-bench-") as folder:
        path = Path(folder) / "outbox.db"
        sender = OrderedSender(path, autostart=False, **sender_options(spec.transport))
        try:
            if spec.scenario == "backlog":
                return _ordered_backlog(sender, messages, spec, target)
            sender.start()
            if spec.scenario == "stream-thread":
                return _ordered_stream_thread(sender.put, messages, spec, target)
            if spec.scenario == "stream-process":
                return _ordered_stream_process(path, spec, target)
            raise ValueError(f"unknown scenario {spec.scenario!r}")
        finally:
            sender.close()


def _ordered_backlog(
    sender: Any, messages: list[tuple[str, str, bytes]], spec: RunSpec, target: int
) -> ContenderResult:
    for start in range(0, len(messages), BACKLOG_PUT_CHUNK):
        chunk = messages[start : start + BACKLOG_PUT_CHUNK]
        sender.put_many([(name, payload, identifier) for identifier, name, payload in chunk])
    started, cpu_before = time.time(), cpu_seconds()
    sender.start()
    wait_processed(spec.endpoint, target)
    cpu = cpu_seconds() - cpu_before
    available = dict.fromkeys((identifier for identifier, _, _ in messages), started)
    return ContenderResult(
        started, cpu, max_rss_kb(), "delivery start to processed", available_at=available
    )


def _ordered_stream_thread(
    put: Callable[..., object],
    messages: list[tuple[str, str, bytes]],
    spec: RunSpec,
    target: int,
) -> ContenderResult:
    available: dict[str, float] = {}
    started, cpu_before = time.time(), cpu_seconds()

    def produce() -> None:
        for identifier, name, payload in messages:
            put(name, payload, message_id=identifier)
            available[identifier] = time.time()

    producer = threading.Thread(target=produce, name="bench-producer")
    producer.start()
    producer.join()
    put_seconds = time.time() - started
    wait_processed(spec.endpoint, target)
    cpu = cpu_seconds() - cpu_before
    return ContenderResult(
        started, cpu, max_rss_kb(), PUT_LATENCY, available_at=available, put_seconds=put_seconds
    )


def _ordered_stream_process(path: Path, spec: RunSpec, target: int) -> ContenderResult:
    """The producer is ``suite_producer.py`` with an ``Outbox`` on the same file: it says when it
    is ready, and puts once told to go, so its start-up is outside the clock."""
    producer_script = Path(__file__).with_name("suite_producer.py")
    producer = subprocess.Popen(
        [sys.executable, str(producer_script), str(path), json.dumps(asdict(spec))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert producer.stdin is not None and producer.stdout is not None
    try:
        if producer.stdout.readline().strip() != "ready":
            raise RuntimeError("the producer process did not start")
        started, cpu_before = time.time(), cpu_seconds()
        producer.stdin.write("go\n")
        producer.stdin.flush()
        report = json.loads(producer.stdout.readline())
        wait_processed(spec.endpoint, target)
        cpu = cpu_seconds() - cpu_before
    finally:
        producer.kill()
        producer.wait()
    return ContenderResult(
        started,
        cpu,
        max_rss_kb(),
        PUT_LATENCY,
        available_at=report["available_at"],
        put_seconds=report["put_seconds"],
        producer_cpu_seconds=report["cpu_seconds"],
    )


CONTENDERS: dict[str, Callable[[RunSpec], ContenderResult]] = {
    "naive": naive,
    "unordered": unordered,
    "ordered": ordered,
}


def main() -> None:
    # Logging is left unconfigured, as a user meets the library: it then says only warnings.
    spec = RunSpec(**json.loads(sys.argv[1]))
    result = CONTENDERS[spec.contender](spec)
    print(json.dumps(asdict(result)))


if __name__ == "__main__":
    main()
