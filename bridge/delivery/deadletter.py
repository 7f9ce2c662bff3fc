"""The dead-letter store: what can never be delivered as it is, kept with its reason.

An entry holds either Segment calls (``kind="calls"``: a batch the collector refused
with a 4xx, or a call over the 32 KB limit) or a provider event (``kind="event"``: a
mapping error or an unknown source), the reason, the collector's answer when there is
one, and when it happened. Nothing is dropped silently: every entry is counted in
metrics, listed by ``bridge dlq list`` and can be replayed once the cause is fixed:
calls go back to the outbox, events back to the inbox (to be re-mapped).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from redis import Redis
from rq import Queue

from bridge import codec, keys, metrics
from bridge.drain import enqueue_drain

Kind = Literal["calls", "event"]

#: Longest collector answer kept with an entry (bytes of text).
MAX_ANSWER = 2000


@dataclass
class DeadLetter:
    """One dead-letter entry."""

    id: str
    kind: Kind
    reason: str
    at: float
    #: The collector's answer (``"400 {...}"``) when it refused the calls.
    answer: str | None = None
    #: The calls (kind ``calls``).
    calls: list[dict[str, Any]] = field(default_factory=list)
    #: The envelope bytes as text (kind ``event``).
    event: str | None = None
    #: Facts for listing: source, event id, event type, message ids.
    source: str | None = None
    event_id: str | None = None

    def to_json(self) -> bytes:
        """The stored form (:mod:`bridge.codec`: Decimal amounts stay exact)."""
        return codec.dumps(self.__dict__)

    @classmethod
    def from_json(cls, data: bytes | str) -> DeadLetter:
        fields = codec.loads(data)
        fields["at"] = float(fields["at"])  # a time, not an amount
        return cls(**fields)


def new_id() -> str:
    """A sortable-enough unique entry id."""
    return f"{int(time.time())}-{uuid.uuid4().hex[:12]}"


def calls_entry(
    calls: Sequence[dict[str, Any]], reason: str, answer: str | None = None
) -> DeadLetter:
    return DeadLetter(
        id=new_id(),
        kind="calls",
        reason=_text(reason),
        at=time.time(),
        answer=_text(answer[:MAX_ANSWER]) if answer else None,
        calls=list(calls),
    )


def event_entry(
    envelope: bytes | str, reason: str, source: str | None, event_id: str | None
) -> DeadLetter:
    # An envelope that is not even UTF-8 (or a reason quoting such bytes) must still be
    # storable: its entry is the record that it existed.
    text = envelope.decode(errors="replace") if isinstance(envelope, bytes) else envelope
    return DeadLetter(
        id=new_id(),
        kind="event",
        reason=_text(reason),
        at=time.time(),
        event=text,
        source=source,
        event_id=event_id,
    )


def _text(value: str) -> str:
    """``value`` without lone surrogates (which no JSON encoder writes)."""
    return value.encode("utf-8", "replace").decode("utf-8")


def reason_slug(reason: str) -> str:
    """The metric label of a reason: its first word (``mapping_error: ...``)."""
    return reason.split(":", 1)[0].split(" ", 1)[0][:40] or "unknown"


def queue_add(pipe: Any, entry: DeadLetter) -> None:
    """Queue on ``pipe`` the commands storing ``entry`` and counting it."""
    pipe.hset(keys.DLQ, entry.id, entry.to_json())
    pipe.zadd(keys.DLQ_INDEX, {entry.id: entry.at})
    label = reason_slug(entry.reason)
    if entry.kind == "calls":
        pipe.hincrby(
            keys.METRICS, metrics.CALLS_DEAD_LETTERED.field(reason=label), len(entry.calls)
        )
    else:
        pipe.hincrby(keys.METRICS, metrics.EVENTS_DEAD_LETTERED.field(reason=label), 1)


REPLAY_LUA = """
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
local n = #ARGV - 4
if n > 0 then
  redis.call('RPUSH', KEYS[3], unpack(ARGV, 5))
  if ARGV[4] ~= '' then
    redis.call('SET', KEYS[4], ARGV[2], 'NX')
    redis.call('HINCRBY', KEYS[5], ARGV[4], n)
  end
end
redis.call('HINCRBY', KEYS[5], ARGV[3], 1)
return 1
"""


@dataclass
class DeadLetters:
    """The store, on one Redis."""

    redis: Redis

    def __post_init__(self) -> None:
        self._replay = self.redis.register_script(REPLAY_LUA)

    def add(self, entry: DeadLetter) -> DeadLetter:
        pipe = self.redis.pipeline(transaction=True)
        queue_add(pipe, entry)
        pipe.execute()
        return entry

    def __len__(self) -> int:
        return int(self.redis.zcard(keys.DLQ_INDEX))

    def ids(self, limit: int | None = None) -> list[str]:
        end = -1 if limit is None else limit - 1
        raw: list[Any] = self.redis.zrange(keys.DLQ_INDEX, 0, end)
        return [i.decode() if isinstance(i, bytes) else str(i) for i in raw]

    def get(self, entry_id: str) -> DeadLetter | None:
        data = self.redis.hget(keys.DLQ, entry_id)
        return None if data is None else DeadLetter.from_json(data)

    def __iter__(self) -> Iterator[DeadLetter]:
        for entry_id in self.ids():
            entry = self.get(entry_id)
            if entry is not None:
                yield entry

    def drop(self, entry_id: str) -> bool:
        pipe = self.redis.pipeline(transaction=True)
        pipe.hdel(keys.DLQ, entry_id)
        pipe.zrem(keys.DLQ_INDEX, entry_id)
        removed, _ = pipe.execute()
        return bool(removed)

    def replay(self, entry_id: str) -> DeadLetter | None:
        """Put an entry back for delivery and remove it, in one transaction.

        Calls are appended to the outbox as they are (same messageIds). An event goes
        back to the inbox and a drain job is kicked, so the current mapping is applied.
        Returns the entry, or None if it no longer exists.
        """
        entry = self.get(entry_id)
        if entry is None:
            return None
        now = time.time()
        if entry.kind == "calls":
            target = keys.OUTBOX
            # The same bytes as when they were first buffered (codec: exact decimals).
            items = [f"{now!r} ".encode() + codec.dumps(c) for c in entry.calls]
        else:
            target = keys.INBOX
            items = [(entry.event or "").encode()]
        # The script removes the entry and pushes its items only if the entry was still
        # there: two operators replaying at once deliver it once.
        done = self._replay(
            keys=[keys.DLQ, keys.DLQ_INDEX, target, keys.OUTBOX_SINCE, keys.METRICS],
            args=[
                entry_id,
                repr(now),
                metrics.DLQ_REPLAYED.field(kind=entry.kind),
                metrics.CALLS_BUFFERED.field() if entry.kind == "calls" else "",
                *items,
            ],
        )
        if not done:
            return None
        if entry.kind == "event":
            enqueue_drain(Queue(keys.QUEUE, connection=self.redis))
        return entry
