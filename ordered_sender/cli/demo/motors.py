"""Why order matters: AWS's motor-pressure detector model fed the same readings two ways.

The detector model is the one of the IoT Events developer guide: a motor goes from Normal to
Dangerous on a pressure above 70 and back to Normal after three readings of 70 or less in a row,
counting them in the variable ``pressureThresholdBreached``. Each motor has a seeded random walk
of pressure readings around the threshold. They are sent twice, each time to a fresh model:

(a) naively: each motor's gateway uploads its readings ten at a time in one BatchPutMessage
    request, and IoT Events processes the messages of a request in no guaranteed order;
(b) through ``OrderedSender`` with one lane per motor (``ByInputAndKey("motorid")``): one request
    carries the next reading of up to ten motors, never two readings of one motor.

Then every motor's detector is read with DescribeDetector and compared with the state that the
readings imply, computed here in plain Python from the model's documented semantics. The ordered
run is right when it got every motor right; the naive run is expected to get some wrong.

``compare`` runs both on the demo command's endpoint; ``summary`` and ``verdict`` are what the
command prints of it.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from ordered_sender import ByInputAndKey
from ordered_sender.cli.demo.endpoint import (
    BATCH_SIZE,
    DELIVERY_TIMEOUT_SECONDS,
    DetectorReading,
    Endpoint,
    NaiveAgainstOrdered,
    NaiveSender,
    Outgoing,
    Sender,
    ordered_run,
)
from ordered_sender.emulator.detectors.examples import (
    MOTOR_DETECTOR_MODEL,
    MOTOR_INPUT,
    motor_payload,
)

MODEL_NAME: str = MOTOR_DETECTOR_MODEL["detectorModelName"]
INPUT_NAME: str = MOTOR_INPUT["inputName"]
THRESHOLD = 70
"""The model's pressure threshold: above it a motor is over-pressurized."""
VARIABLE = "pressureThresholdBreached"


class MotorState(Enum):
    """The guide's model's states; the values are the state names."""

    NORMAL = "Normal"
    DANGEROUS = "Dangerous"


@dataclass(frozen=True, slots=True)
class MotorOutcome:
    """One motor: its readings, the state they imply and what each run left in its detector."""

    motor_id: str
    pressures: tuple[int, ...]
    expected: DetectorReading
    naive: DetectorReading
    ordered: DetectorReading


@dataclass(frozen=True, slots=True)
class Result(NaiveAgainstOrdered):
    """Both runs, motor by motor."""

    endpoint_url: str
    outcomes: tuple[MotorOutcome, ...]


def pressure_traces(motors: int, readings: int, seed: int) -> dict[str, tuple[int, ...]]:
    """Seeded random walks that keep crossing the threshold, as a struggling pump's would."""
    rng = random.Random(seed)
    traces: dict[str, tuple[int, ...]] = {}
    for number in range(1, motors + 1):
        pressure = rng.uniform(55, 85)
        trace = []
        for _ in range(readings):
            # Pulled back towards the threshold, so every motor crosses it now and then.
            pressure += rng.gauss(0, 6) + 0.2 * (THRESHOLD - 3 - pressure)
            trace.append(round(min(max(pressure, 20), 120)))
        traces[f"motor-{number:02d}"] = tuple(trace)
    return traces


def expected_reading(pressures: Sequence[int]) -> DetectorReading:
    """The detector after these readings in this order, under the model's BATCH evaluation.

    BATCH (the default evaluation method) evaluates every condition of an input with the
    variable values from before that input; the actions' assignments take effect afterwards.
    """
    state, breached = MotorState.NORMAL, 0
    for pressure in pressures:
        if state is MotorState.NORMAL:
            if pressure > THRESHOLD:
                state, breached = MotorState.DANGEROUS, breached + 3
        elif pressure > THRESHOLD:
            breached = 3
        else:
            back_to_normal = breached <= 1
            breached -= 1
            if back_to_normal:
                # Normal's onEnter resets the counter.
                state, breached = MotorState.NORMAL, 0
    return DetectorReading(state.value, ((VARIABLE, str(breached)),))


def naive_order(traces: dict[str, tuple[int, ...]]) -> list[Outgoing]:
    """Every motor's readings, ten at a time per motor, as each gateway uploads them."""
    messages: list[Outgoing] = []
    longest = max(len(trace) for trace in traces.values())
    for start in range(0, longest, BATCH_SIZE):
        for motor_id, trace in traces.items():
            messages += [
                (INPUT_NAME, motor_payload(motor_id, p)) for p in trace[start:][:BATCH_SIZE]
            ]
    return messages


def time_order(traces: dict[str, tuple[int, ...]]) -> list[Outgoing]:
    """The readings as they happen: the first of every motor, then the second, and so on."""
    longest = max(len(trace) for trace in traces.values())
    return [
        (INPUT_NAME, motor_payload(motor_id, trace[index]))
        for index in range(longest)
        for motor_id, trace in traces.items()
        if index < len(trace)
    ]


def run_once(
    endpoint: Endpoint, sender: Sender, messages: Sequence[Outgoing], motor_ids: Sequence[str]
) -> dict[str, DetectorReading]:
    """Send to a fresh model and read every motor's detector back."""
    endpoint.install_detector_model([MOTOR_INPUT], MOTOR_DETECTOR_MODEL)
    sender.send(messages)
    return {motor_id: endpoint.reading(MODEL_NAME, motor_id) for motor_id in motor_ids}


def compare(
    endpoint: Endpoint,
    *,
    motors: int = 20,
    readings: int = 30,
    seed: int = 7,
    timeout: float = DELIVERY_TIMEOUT_SECONDS,
) -> Result:
    """Both runs on ``endpoint``, each to a fresh model; ``timeout`` bounds the ordered one."""
    traces = pressure_traces(motors, readings, seed)
    naive = run_once(endpoint, NaiveSender(endpoint), naive_order(traces), list(traces))
    with ordered_run(endpoint, ByInputAndKey("motorid"), timeout=timeout) as ordered_sender:
        ordered = run_once(endpoint, ordered_sender, time_order(traces), list(traces))
    return Result(
        endpoint.url,
        tuple(
            MotorOutcome(
                motor_id, trace, expected_reading(trace), naive[motor_id], ordered[motor_id]
            )
            for motor_id, trace in traces.items()
        ),
    )


def _cell(reading: DetectorReading, expected: DetectorReading | None = None) -> str:
    text = f"{reading.state_name:<9} {dict(reading.variables).get(VARIABLE, '-'):>2}"
    if expected is None:
        return text
    return f"{text}  {'ok' if reading == expected else 'WRONG'}"


def _header(result: Result) -> list[str]:
    readings = len(result.outcomes[0].pressures)
    return [
        f"{len(result.outcomes)} motors, {readings} pressure readings each, sent to "
        f"{result.endpoint_url}",
        f"detector model {MODEL_NAME!r} (Normal/Dangerous), key motorid, threshold {THRESHOLD}",
        "(a) naive: each motor's readings in BatchPutMessage requests of 10 (any order inside)",
        '(b) ordered: OrderedSender with ByInputAndKey("motorid"), one lane per motor',
        "",
        f"each cell: final stateName and {VARIABLE}, from DescribeDetector",
        f"{'motor':<10}{'last readings':<22}{'expected':<15}{'naive':<21}ordered",
    ]


def _row(outcome: MotorOutcome) -> str:
    last = " ".join(f"{p:>3}" for p in outcome.pressures[-5:])
    return (
        f"{outcome.motor_id:<10}{last:<22}{_cell(outcome.expected):<15}"
        f"{_cell(outcome.naive, outcome.expected):<21}"
        f"{_cell(outcome.ordered, outcome.expected)}"
    )


def summary(result: Result) -> str:
    """The rows of the motors some run got wrong, without the verdict (see ``verdict``)."""
    wrong = [
        outcome
        for outcome in result.outcomes
        if outcome.expected != outcome.naive or outcome.expected != outcome.ordered
    ]
    if not wrong:
        return "\n".join([*_header(result)[:5], "no motor came out wrong in either run"])
    return "\n".join([*_header(result), *(_row(outcome) for outcome in wrong)])


def verdict(result: Result) -> str:
    """One line: how many motors each run got wrong."""
    motors = len(result.outcomes)
    return (
        f"naive batches: {result.naive_wrong} of {motors} motors wrong; "
        f"ordered: {result.ordered_wrong} of {motors} wrong"
    )
