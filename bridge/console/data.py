"""Read what the console shows from Redis: log entries, details, overview numbers."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from redis import Redis
from redis.typing import EncodableT
from rq import Worker

from bridge import keys, metrics
from bridge.console import record
from bridge.delivery.deadletter import DeadLetter, DeadLetters

#: Entries one page of the log shows (and the most a live update returns).
PAGE = 100
#: Entries scanned at most to answer a filtered page (bounded work per request).
SCAN_LIMIT = 5000


def _s(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


@dataclass
class Entry:
    """One line of the event log (a webhook, or an operator's action)."""

    id: str
    kind: str
    t: float
    source: str
    type: str
    event_id: str
    outcome: str
    reason: str
    status: str
    ms: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    truncated: bool = False

    @classmethod
    def from_facts(cls, entry_id: str, meta: dict[str, Any], fields: dict[str, Any]) -> Entry:
        headers = fields.get("h")
        return cls(
            id=entry_id,
            kind=str(meta.get("kind", "webhook")),
            t=float(meta.get("t", 0)),
            source=str(meta.get("source", "")),
            type=str(meta.get("type", "")),
            event_id=str(meta.get("eid", "")),
            outcome=str(meta.get("outcome", "")),
            reason=str(meta.get("reason", "")),
            status=str(meta.get("status", "")),
            ms=str(meta.get("ms", "")),
            # A stored event's headers are in its facts; any other's in a field.
            headers=orjson.loads(headers) if headers else dict(meta.get("h") or {}),
            body=fields.get("b") or b"",
            truncated=bool(meta.get("truncated")),
        )

    @property
    def position(self) -> tuple[int, int, int]:
        """Where the entry is in the log: (ms, seq) of its stream entry, index in it."""
        return _position(self.id)

    def summary(self) -> dict[str, Any]:
        """What the live log receives (no headers, no body)."""
        return {
            "id": self.id,
            "kind": self.kind,
            "t": self.t,
            "time": fmt_time(self.t),
            "source": self.source,
            "type": self.type,
            "event_id": self.event_id,
            "outcome": self.outcome,
            "reason": self.reason,
            "ms": self.ms,
        }


def expand(entry_id: Any, raw: Any) -> list[Entry]:
    """The webhooks of one stream entry, oldest first: a burst of stored events has
    many (ids ``<stream id>.<index>``), any other entry one (its stream id)."""
    sid = _s(entry_id)
    f = {_s(k): v for k, v in (raw or {}).items()}
    if f.get("e"):
        items = orjson.loads(f["e"])
        return [Entry.from_facts(f"{sid}.{i}", dict(m), {}) for i, m in enumerate(items)]
    meta: dict[str, Any] = orjson.loads(f["m"]) if f.get("m") else {}
    return [Entry.from_facts(sid, meta, f)]


def valid_id(entry_id: str) -> bool:
    """``<ms>-<seq>`` or ``<ms>-<seq>.<index>`` (what :func:`expand` gives)."""
    sid, dot, index = entry_id.partition(".")
    left, dash, right = sid.partition("-")
    return (
        bool(dash)
        and left.isdigit()
        and right.isdigit()
        and (not dot or index.isdigit())
        and len(entry_id) < 64
    )


def _position(entry_id: str) -> tuple[int, int, int]:
    sid, _, index = entry_id.partition(".")
    left, _, right = sid.partition("-")
    return int(left), int(right), int(index or 0)


def fmt_time(t: float | None) -> str:
    if not t:
        return "—"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


@dataclass
class Filters:
    source: str = ""
    outcome: str = ""
    type: str = ""
    event_id: str = ""

    def match(self, e: Entry) -> bool:
        return (
            (not self.source or e.source == self.source)
            and (not self.outcome or e.outcome == self.outcome)
            and (not self.type or e.type == self.type)
            and (not self.event_id or e.event_id == self.event_id)
        )


def entries(redis: Redis, filters: Filters, *, before: str = "+", limit: int = PAGE) -> list[Entry]:
    """Newest first, matching ``filters``, older than ``before`` (an entry id; ``+``:
    from the newest); scans at most SCAN_LIMIT webhooks."""
    out: list[Entry] = []
    scanned = 0
    cursor = "+"
    if before != "+":
        if not valid_id(before):
            return []
        cursor = before.partition(".")[0]
        below = _position(before)
        # The rest of the cursor's own stream entry first (a burst holds many).
        own: Any = redis.xrange(record.LOG, min=cursor, max=cursor, count=1)
        for entry_id, raw in own:
            for e in reversed(expand(entry_id, raw)):
                if e.position < below and filters.match(e):
                    out.append(e)
        cursor = f"({cursor}"
    while len(out) < limit and scanned < SCAN_LIMIT:
        chunk: Any = redis.xrevrange(record.LOG, max=cursor, min="-", count=100)
        if not chunk:
            break
        for entry_id, raw in chunk:
            rows = expand(entry_id, raw)
            scanned += len(rows)
            out.extend(e for e in reversed(rows) if filters.match(e))
        cursor = f"({_s(chunk[-1][0])}"
    return out[:limit]


def entries_after(redis: Redis, after: str, filters: Filters) -> list[Entry]:
    """Entries newer than ``after`` (an entry id), newest first, at most PAGE: the live
    update."""
    found: list[Entry] = []
    low = "-"
    if after and valid_id(after):
        sid = after.partition(".")[0]
        above = _position(after)
        own: Any = redis.xrange(record.LOG, min=sid, max=sid, count=1)
        for entry_id, raw in own:
            found += [e for e in expand(entry_id, raw) if e.position > above]
        low = f"({sid}"
    raw_entries: Any = redis.xrange(record.LOG, min=low, max="+", count=PAGE)
    for entry_id, raw in raw_entries:
        found += expand(entry_id, raw)
    return [e for e in reversed(found) if filters.match(e)][:PAGE]


def last_id(redis: Redis) -> str:
    newest = redis.xrevrange(record.LOG, count=1)
    return expand(*newest[0])[-1].id if newest else "0-0"


def entry(redis: Redis, entry_id: str) -> Entry | None:
    if not valid_id(entry_id):
        return None
    raw: Any = redis.xrange(
        record.LOG, min=entry_id.partition(".")[0], max=entry_id.partition(".")[0], count=1
    )
    if not raw:
        return None
    return next((e for e in expand(*raw[0]) if e.id == entry_id), None)


def event_detail(redis: Redis, source: str, event_id: str) -> dict[str, Any] | None:
    raw = redis.get(record.event_key(source, event_id))
    return None if raw is None else dict(orjson.loads(raw))


def call_states(redis: Redis, message_ids: list[str]) -> dict[str, dict[str, Any]]:
    if not message_ids:
        return {}
    raw = redis.mget([record.call_key(m) for m in message_ids])
    return {m: orjson.loads(v) for m, v in zip(message_ids, raw, strict=True) if v is not None}


def _bucket_sums(redis: Redis, keys_: list[str]) -> list[dict[str, int]]:
    pipe = redis.pipeline(transaction=False)
    for k in keys_:
        pipe.hgetall(k)
    return [{_s(f): int(v) for f, v in h.items()} for h in pipe.execute()]


def overview(redis: Redis, sources: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-source counts (the last 60 and 1,440 minute buckets), delivery state,
    workers, the collector's last answer and a per-minute series."""
    now = time.time()
    per_day = _bucket_sums(redis, [record.minute_key(now - 60 * i) for i in range(1439, -1, -1)])
    per_minute = per_day[-60:]
    hour_total: dict[str, int] = {}
    for bucket in per_minute:
        for f, n in bucket.items():
            hour_total[f] = hour_total.get(f, 0) + n
    day_total: dict[str, int] = {}
    for bucket in per_day:
        for f, n in bucket.items():
            day_total[f] = day_total.get(f, 0) + n
    last = {_s(k): float(_s(v)) for k, v in redis.hgetall(record.LAST).items()}
    rows = []
    outcomes = ("accepted", "duplicate", "ignored", "rejected")
    names = [s["source"] for s in sources] + sorted(
        {f.split("|")[1] for f in day_total if f.startswith(("wh|", "rj|"))}
        - {s["source"] for s in sources}
    )
    known = {s["source"]: s for s in sources}
    for name in names:
        info = known.get(name, {"source": name, "on": False, "reason": "not in the catalogue"})
        rejected_by = {
            f.split("|")[2]: (hour_total.get(f, 0), n)
            for f, n in day_total.items()
            if f.startswith(f"rj|{name}|")
        }
        rows.append(
            {
                "source": name,
                "on": info["on"],
                "reason": info["reason"],
                "hour": {o: hour_total.get(f"wh|{name}|{o}", 0) for o in outcomes},
                "day": {o: day_total.get(f"wh|{name}|{o}", 0) for o in outcomes},
                "rejected_by": rejected_by,
                "last": fmt_time(last.get(name)),
            }
        )
    since = redis.get(keys.OUTBOX_SINCE)
    collector = {_s(k): _s(v) for k, v in redis.hgetall(record.COLLECTOR).items()}
    # The collector's answers since the metrics began: accepted batches, failed attempts.
    answers: dict[str, int] = {}
    sent = redis.hget(keys.METRICS, metrics.BATCHES_SENT.field())
    if sent:
        answers["accepted"] = int(sent)
    prefix = metrics.BATCHES_FAILED.name + "|"
    for f, v in redis.hscan_iter(keys.METRICS, match=f"{prefix}*", count=500):
        labels = dict(p.split("=", 1) for p in _s(f)[len(prefix) :].split(",") if "=" in p)
        answers[f"{labels.get('outcome', '?')}: {labels.get('reason', '?')}"] = int(v)
    workers = []
    for w in Worker.all(connection=redis):
        beat = w.last_heartbeat
        workers.append(
            {
                "name": w.name,
                "state": str(w.get_state()),
                "heartbeat": fmt_time(beat.timestamp()) if beat else "—",
                "age": round(now - beat.timestamp(), 1) if beat else None,
            }
        )
    series = [
        {
            "minute": time.strftime("%H:%M", time.gmtime(int((now - 60 * (59 - i)) // 60) * 60)),
            "webhooks": sum(n for f, n in b.items() if f.startswith("wh|")),
            "calls": b.get("calls|sent", 0),
        }
        for i, b in enumerate(per_minute)
    ]
    return {
        "sources": rows,
        "buffered": int(redis.llen(keys.OUTBOX)),
        "oldest": round(now - float(_s(since)), 1) if since else None,
        "batches_pending": int(redis.zcard(keys.BATCHES_DUE)),
        "inbox": int(redis.llen(keys.INBOX)),
        "dead_letters": int(redis.zcard(keys.DLQ_INDEX)),
        "workers": workers,
        "collector": collector,
        "answers": answers,
        "collector_at": fmt_time(float(collector["at"])) if collector.get("at") else "—",
        "series": series,
    }


def dead_letters(redis: Redis, limit: int = 500) -> list[DeadLetter]:
    """Newest first, at most ``limit``."""
    store = DeadLetters(redis)
    raw = redis.zrevrange(keys.DLQ_INDEX, 0, limit - 1)
    found = [store.get(_s(i)) for i in raw]
    return [d for d in found if d is not None]


def action(redis: Redis, settings_age: int, maxlen: int, what: str, detail: str) -> None:
    """Put an operator's action in the event log (replays and drops show up there)."""
    meta = {
        "kind": "action",
        "t": time.time(),
        "source": "console",
        "type": what,
        "eid": "",
        "outcome": what,
        "reason": detail[:500],
        "status": "",
        "ms": "",
    }
    # Through the recorder's script: the entry carries the log's running count.
    append = redis.register_script(record.APPEND_LUA)
    args: list[EncodableT] = [
        maxlen,
        record.oldest_kept(settings_age),
        "a",
        orjson.dumps(meta),
        b"{}",
        b"",
    ]
    append(keys=[record.LOG], args=args)
