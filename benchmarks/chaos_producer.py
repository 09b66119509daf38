"""A producer process of the chaos harness: puts numbered messages with ``Outbox``, and says so.

    python benchmarks/chaos_producer.py --outbox OUTBOX --ledger LEDGER --lane A --lane B
        --count 100 --interval-ms 5

Puts ``--count`` messages round-robin over its lanes, each numbered 0, 1, 2, ... within its lane
and continuing after the highest index its ledger shows, so a producer started after a killed one
goes on where it stopped. It writes ``try`` before and ``ok`` after each put, flushed at once,
because the harness may SIGKILL it at any point (see ``chaos_check``). Only this producer writes
these lanes: two producers sharing a lane would order it by commit, which neither could predict.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from chaos_check import message_id, read_ledger

from ordered_sender import Outbox


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outbox", type=Path, required=True)
    parser.add_argument("--ledger", type=Path, required=True)
    parser.add_argument("--lane", action="append", required=True, help="A lane (input) it owns.")
    parser.add_argument("--count", type=int, required=True, help="Messages to put.")
    parser.add_argument(
        "--interval-ms",
        type=float,
        default=5.0,
        help="Pause between puts, so puts go on while the deliverer runs and is killed.",
    )
    arguments = parser.parse_args()
    earlier = read_ledger(arguments.ledger.read_text() if arguments.ledger.exists() else "")
    next_index = {lane: earlier.highest_tried.get(lane, -1) + 1 for lane in arguments.lane}
    with Outbox(arguments.outbox) as outbox, arguments.ledger.open("a") as ledger:
        for number in range(arguments.count):
            lane = arguments.lane[number % len(arguments.lane)]
            index = next_index[lane]
            next_index[lane] = index + 1
            identifier = message_id(lane, index)
            ledger.write(f"try {lane} {index}\n")
            ledger.flush()
            outbox.put(lane, {"lane": lane, "index": index}, message_id=identifier)
            ledger.write(f"ok {lane} {index} {identifier}\n")
            ledger.flush()
            time.sleep(arguments.interval_ms / 1000)


if __name__ == "__main__":
    main()
