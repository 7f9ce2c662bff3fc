"""The envelope intake stores for each verified event, and workers read back.

It is one JSON object whose ``body`` member is the provider's body spliced in byte for
byte (it was verified as a JSON object), so intake never re-serialises a payload.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True, slots=True)
class Envelope:
    """A verified provider event waiting to be mapped."""

    #: Mapping file stem the webhook came in on (``stripe``).
    source: str
    #: Provider event id (``evt_…``), the dedup key.
    id: str
    #: Event type the rules match on.
    type: str
    #: Provider's event time, Unix seconds (becomes each call's ``timestamp``).
    time: float
    #: When intake accepted it, Unix seconds (for webhook→collector latency).
    received_at: float
    #: Parsed provider body.
    body: Any

    @staticmethod
    def encode(
        *, source: str, id: str, type: str, time: float, received_at: float, raw: bytes
    ) -> bytes:
        """Serialise without parsing ``raw`` again: it is spliced in as ``body``."""
        head = orjson.dumps(
            {"source": source, "id": id, "type": type, "time": time, "received_at": received_at}
        )
        return head[:-1] + b',"body":' + raw + b"}"

    @staticmethod
    def payload(data: bytes) -> bytes:
        """The provider's body as :meth:`encode` spliced it in, byte for byte, without
        parsing. The first ``,"body":`` is the splice: the members before it are JSON
        strings and numbers, and inside a JSON string every ``"`` is escaped."""
        at = data.find(b',"body":')
        return data[at + 8 : -1] if at >= 0 else b""

    @classmethod
    def decode(cls, data: bytes | str) -> Envelope:
        obj = orjson.loads(data)
        return cls(
            source=obj["source"],
            id=obj["id"],
            type=obj["type"],
            time=float(obj["time"]),
            received_at=float(obj["received_at"]),
            body=obj["body"],
        )
