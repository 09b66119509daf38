"""The producer of the "stream-process" scenario: puts through an ``Outbox`` in its own process.

    python benchmarks/suite_producer.py OUTBOX '<RunSpec as JSON>'

Opens the outbox, prints ``ready``, waits for a line on standard input, then puts the run's
messages one at a time (each put() durable before it returns) and prints one JSON line: when each
put returned, how long the puts took and the CPU they used. The sender delivering the same file
is the process that started this one.
"""

from __future__ import annotations

import json
import sys
import time

from suite_contenders import RunSpec, cpu_seconds, run_messages

from ordered_sender import Outbox


def main() -> None:
    path, spec = sys.argv[1], RunSpec(**json.loads(sys.argv[2]))
    messages = list(run_messages(spec))
    with Outbox(path) as outbox:
        print("ready", flush=True)
        sys.stdin.readline()
        started, cpu_before = time.time(), cpu_seconds()
        available = {}
        for identifier, name, payload in messages:
            outbox.put(name, payload, message_id=identifier)
            available[identifier] = time.time()
        report = {
            "available_at": available,
            "put_seconds": time.time() - started,
            "cpu_seconds": cpu_seconds() - cpu_before,
        }
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
