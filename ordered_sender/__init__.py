"""Send messages to AWS IoT Events in guaranteed per-lane order, durably.

from ordered_sender import OrderedSender

with OrderedSender("outbox.db") as sender:
    sender.put("PressureInput", {"motorid": "m1", "pressure": 80})
    sender.flush(timeout=30)
"""

from ordered_sender.aio import AsyncOrderedSender, AsyncReceipt
from ordered_sender.config import SenderConfig
from ordered_sender.errors import (
    DeliveryError,
    DeliveryFailed,
    InvalidConfig,
    InvalidMessage,
    LanePaused,
    NotAnOutbox,
    NothingPending,
    OrderedSenderError,
    OutboxFull,
    OutboxInUse,
    SenderClosed,
    StoreError,
)
from ordered_sender.lanes import ByInput, ByInputAndKey, ByInputGroup, LaneFunction
from ordered_sender.logs import configure_logging
from ordered_sender.message import Message
from ordered_sender.outbox import Outbox, Receipt
from ordered_sender.sender import OrderedSender
from ordered_sender.stats import RequestLatency, SenderStats
from ordered_sender.store import DeadLetter, LaneOverview, OutboxCounts, PausedLane

__all__ = [
    "AsyncOrderedSender",
    "AsyncReceipt",
    "ByInput",
    "ByInputAndKey",
    "ByInputGroup",
    "DeadLetter",
    "DeliveryError",
    "DeliveryFailed",
    "InvalidConfig",
    "InvalidMessage",
    "LaneFunction",
    "LaneOverview",
    "LanePaused",
    "Message",
    "NotAnOutbox",
    "NothingPending",
    "OrderedSender",
    "OrderedSenderError",
    "Outbox",
    "OutboxCounts",
    "OutboxFull",
    "OutboxInUse",
    "PausedLane",
    "Receipt",
    "RequestLatency",
    "SenderClosed",
    "SenderConfig",
    "SenderStats",
    "StoreError",
    "configure_logging",
]
