"""Delivery: inbox events -> mapped calls -> durable outbox -> batches -> collector.

Public surface::

    Client          send your own calls through the durable path (client.py)
    BridgeWorker    the rq worker class (worker.py)
    DeadLetters     the dead-letter store (deadletter.py)
    Observers, FlushEvent   flushing / flushed / err hooks (observers.py)

Errors (from :mod:`bridge.errors`)::

    DeliveryError
    ├── RetryableDelivery   network error, timeout, 408, 429, 5xx: retried with backoff
    └── RejectedDelivery    other 4xx, calls over 32 KB: dead-lettered
    InvalidCall             (ValueError) a Client call without userId/anonymousId

How it fits together is in docs/delivery.md.
"""

from __future__ import annotations

from bridge.delivery.client import Client, InvalidCall
from bridge.delivery.deadletter import DeadLetter, DeadLetters
from bridge.delivery.observers import FlushEvent, Observers
from bridge.delivery.outbox import MAX_BATCH_BYTES, MAX_BATCH_CALLS, MAX_CALL_BYTES

__all__ = [
    "MAX_BATCH_BYTES",
    "MAX_BATCH_CALLS",
    "MAX_CALL_BYTES",
    "Client",
    "DeadLetter",
    "DeadLetters",
    "FlushEvent",
    "InvalidCall",
    "Observers",
]
