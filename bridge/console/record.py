"""What the console shows, recorded in Redis by intake and delivery: small and bounded.

Layout (everything under ``bridge:console:``)::

    log            stream  one entry per webhook (and per console action), newest last:
                           fields m (JSON facts; with the masked headers as "h" when
                           the accept script wrote it), o (the outcome that script
                           decided), h (masked headers JSON) and b (body) for
                           webhooks the event store did not take;
                           capped at BRIDGE_CONSOLE_RETENTION entries and trimmed to
                           BRIDGE_CONSOLE_RETENTION_AGE seconds
    m:<minute>     hash    per-minute counters ("wh|<source>|<outcome>", "rj|<source>|
                           <reason>", "calls|sent"); expire after 25 hours (the
                           overview sums the last 60 for an hour, 1,440 for a day)
    last           hash    source -> time of its last webhook
    ev:<src>:<id>  string  what an event became: its payload, and its calls or its
                           dead letter
    call:<msgid>   string  a call's delivery state (waiting, sent, retrying, dead)
    details        list    the ev:/call: keys in the order written; past
                           4 x BRIDGE_CONSOLE_RETENTION the oldest are deleted
    collector      hash    the collector's last answer

Every detail key also expires after BRIDGE_CONSOLE_RETENTION_AGE, so memory is bounded
by count and by age. Recording never fails the webhook or the job it describes.

Two paths write the log, so that recording costs a webhook almost nothing:

* a verified event that reaches the event store (accepted or duplicate: nearly all
  traffic) is recorded **by the accept script itself** (:data:`ACCEPT_LOG_LUA`, run by
  :mod:`bridge.intake.store` in the same call that stores the event), from its masked
  headers and a few facts (:meth:`IntakeRecorder.stored`): no extra round trip. Its
  payload is not copied into the log: the worker that maps the event records it with
  the calls (:meth:`DeliveryRecorder.mapped`), from the envelope it holds anyway
  (sending and persisting the body twice was most of what recording cost intake).
  Its outcome is counted in the web process and written with the next burst
  (:meth:`IntakeRecorder.counted`);
* every other answer (rejected, ignored, unavailable) is buffered in the process, body
  included, and written in one script call per burst (:meth:`IntakeRecorder.webhook`).

For entries the accept script writes, ``ms`` is the time up to the store call: the
script cannot time its own round trip (the web process's ``webhook`` log line has
the whole time).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from redis import Redis
from redis.exceptions import NoScriptError, RedisError

from bridge import codec
from bridge.console.mask import environ_headers, mask_headers
from bridge.envelope import Envelope

if TYPE_CHECKING:
    from bridge.delivery.deadletter import DeadLetter
    from bridge.delivery.observers import FlushEvent
    from bridge.settings import Settings

#: Key prefix of everything the console records.
PREFIX = "bridge:console:"
#: The event log stream.
LOG = f"{PREFIX}log"
#: Source -> time of its last webhook.
LAST = f"{PREFIX}last"
#: The capped index of detail keys.
DETAILS = f"{PREFIX}details"
#: The collector's last answer.
COLLECTOR = f"{PREFIX}collector"

#: Longest payload kept per webhook (bytes); longer ones are cut and marked.
MAX_BODY = 64 * 1024
#: Detail keys kept per log entry allowed (an event has a few calls on average).
DETAILS_PER_ENTRY = 4
#: Entries buffered before the request that adds the last one writes them all.
FLUSH_AT = 64
#: Seconds an entry waits at most before it is written (by a request or the timer).
FLUSH_EVERY = 0.25

REDIS_ERRORS = (RedisError, OSError)

# KEYS[1]: the details list, KEYS[2]: the log; ARGV: cap, ttl, the oldest log entry id
# to keep (the log's age limit: workers keep it, as the accept script does not), then
# key/value pairs.
SET_DETAILS_LUA = """
local ttl = tonumber(ARGV[2])
redis.call('XTRIM', KEYS[2], 'MINID', ARGV[3])
for i = 4, #ARGV, 2 do
  redis.call('SET', ARGV[i], ARGV[i + 1], 'EX', ttl)
  redis.call('RPUSH', KEYS[1], ARGV[i])
end
local over = redis.call('LLEN', KEYS[1]) - tonumber(ARGV[1])
if over > 0 then
  local old = redis.call('LRANGE', KEYS[1], 0, over - 1)
  redis.call('LTRIM', KEYS[1], over, -1)
  for s = 1, #old, 1000 do
    redis.call('UNLINK', unpack(old, s, math.min(s + 999, #old)))
  end
end
redis.call('EXPIRE', KEYS[1], ttl)
return over
"""


# KEYS[1]: the log; ARGV: maxlen, then facts/headers/body per entry. One script call per
# burst: redis-py's per-command cost (~12 µs of client CPU per XADD) was most of the
# recording's cost on the web process.
APPEND_LUA = """
local maxlen = ARGV[1]
for i = 2, #ARGV, 3 do
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', maxlen, '*',
             'm', ARGV[i], 'h', ARGV[i + 1], 'b', ARGV[i + 2])
end
return (#ARGV - 1) / 3
"""


#: Seconds a per-minute counter hash lives: a day of them, and an hour to spare.
MINUTE_TTL = 25 * 3600

#: Appended to the intake accept script (:data:`bridge.intake.store.ACCEPT_LUA`), run
#: after the event was stored (``result``: 0 duplicate, else accepted) when the call
#: carries the log's key. KEYS[7]: the log; ARGV[13..14]: maxlen, the entry (facts and
#: masked headers, one JSON). One call, on purpose: this runs on every webhook, and
#: each Redis call and argument costs (measured: counters and the last-webhook time here
#: doubled what recording added to the script). Those are counted in the web process
#: and written with its next burst (:meth:`IntakeRecorder.counted`); the log is trimmed
#: by age by workers and by those bursts (:data:`SET_DETAILS_LUA`), not here.
#: ``pcall``: a recording error must not fail an event that is already stored.
ACCEPT_LOG_LUA = """
if #KEYS > 6 then
  local outcome = 'accepted'
  if result == 0 then outcome = 'duplicate' end
  redis.pcall('XADD', KEYS[7], 'MAXLEN', '~', ARGV[13], '*', 'm', ARGV[14], 'o', outcome)
end
"""


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """The log entry of an event the accept script records (keys and arguments it
    appends to its own; see :data:`ACCEPT_LOG_LUA`)."""

    keys: tuple[str]
    args: tuple[int | str | bytes, ...]


def minute_key(t: float) -> str:
    return f"{PREFIX}m:{int(t // 60)}"


def event_key(source: str, event_id: str) -> str:
    return f"{PREFIX}ev:{source}:{event_id}"


def call_key(message_id: str) -> str:
    return f"{PREFIX}call:{message_id}"


def recording(settings: Settings) -> bool:
    """Recording is on exactly when the console is (BRIDGE_CONSOLE_TOKEN set)."""
    return settings.console_token is not None


class Details:
    """Writes detail keys through the capped index (one script call per write)."""

    def __init__(self, redis: Redis, settings: Settings) -> None:
        self.redis = redis
        self.cap = settings.console_retention * DETAILS_PER_ENTRY
        self.ttl = settings.console_retention_age
        self._script = redis.register_script(SET_DETAILS_LUA)

    def write(self, pairs: Sequence[tuple[str, bytes]]) -> None:
        if not pairs:
            return
        args: list[Any] = [self.cap, self.ttl, oldest_kept(self.ttl)]
        for key, value in pairs:
            args += [key, value]
        with contextlib.suppress(*REDIS_ERRORS):
            self._script(keys=[DETAILS, LOG], args=args)


def oldest_kept(age: int) -> str:
    """The id of the oldest log entry kept under an age limit of ``age`` seconds."""
    return f"{int((time.time() - age) * 1000)}-0"


def count_fields(pipe: Any, counts: Mapping[str, int], t: float) -> None:
    """Queue per-minute counter increments (with their expiry)."""
    key = minute_key(t)
    for field, n in counts.items():
        pipe.hincrby(key, field, n)
    pipe.expire(key, MINUTE_TTL)


class IntakeRecorder:
    """The web process's side of the log: the entry of a stored event travels with the
    accept script (:meth:`stored`); any other is buffered and written in bursts
    (:meth:`webhook`)."""

    def __init__(self, redis: Redis, settings: Settings) -> None:
        self.redis = redis
        self.maxlen = settings.console_retention
        self.age = settings.console_retention_age
        self._pid = -1
        self._append = redis.register_script(APPEND_LUA)
        self._reset()
        atexit.register(self.flush)

    def _reset(self) -> None:
        # After a fork (gunicorn --preload) the parent's lock and thread are not ours.
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._buffer: list[tuple[dict[str, Any], bytes, bytes]] = []
        #: Outcomes of stored events (their entries are in the log already) and each
        #: source's last webhook time, written with the next burst.
        self._counts: Counter[str] = Counter()
        self._last: dict[str, float] = {}
        self._first = 0.0
        self._timer: threading.Timer | None = None

    def stored(
        self,
        *,
        source: str,
        event_id: str,
        event_type: str,
        ms: float,
        size: int,
        environ: Mapping[str, Any],
    ) -> StoredEntry:
        """The entry of a verified event, for the accept script to write with it
        (``size``: bytes of its payload, which the worker records, cut at MAX_BODY)."""
        meta = {
            "kind": "webhook",
            "t": time.time(),
            "source": source,
            "type": event_type,
            "eid": event_id,
            "status": 200,
            "ms": ms,
            "truncated": size > MAX_BODY,
            "h": environ_headers(environ),
        }
        return StoredEntry(keys=(LOG,), args=(self.maxlen, orjson.dumps(meta)))

    def webhook(
        self,
        *,
        source: str,
        event_id: str | None,
        event_type: str | None,
        outcome: str,
        reason: str,
        status: int,
        ms: float,
        headers: Mapping[str, str] | None = None,
        body: bytes,
        environ: Mapping[str, Any] | None = None,
    ) -> None:
        """Buffer the entry of one webhook (signature values masked, body capped); the
        headers come from ``headers`` or straight from a WSGI ``environ``."""
        meta = {
            "kind": "webhook",
            "t": time.time(),
            "source": source,
            "type": event_type or "",
            "eid": event_id or "",
            "outcome": outcome,
            "reason": reason,
            "status": status,
            "ms": ms,
            "truncated": len(body) > MAX_BODY,
        }
        masked = environ_headers(environ) if environ is not None else mask_headers(headers or {})
        self.add((meta, orjson.dumps(masked), body[:MAX_BODY]))

    def counted(self, source: str, outcome: str) -> None:
        """Count the outcome of a stored event (its entry was written by the accept
        script), with the next burst's writes."""
        if self._pid != os.getpid():
            self._reset()
        now = time.monotonic()
        with self._lock:
            if not self._buffer and not self._counts:
                self._first = now
            self._counts[f"wh|{source}|{outcome}"] += 1
            self._last[source] = time.time()
            due, arm = self._due(now)
        self._after(due, arm)

    def add(self, entry: tuple[dict[str, Any], bytes, bytes]) -> None:
        """Buffer one entry: its facts, its (masked) headers as JSON, its body."""
        if self._pid != os.getpid():
            self._reset()
        now = time.monotonic()
        with self._lock:
            if not self._buffer and not self._counts:
                self._first = now
            self._buffer.append(entry)
            due, arm = self._due(now)
        self._after(due, arm)

    def _due(self, now: float) -> tuple[bool, bool]:
        """Under the lock: is a burst due, and else must the timer be armed?

        Under load the request that fills the buffer (or finds it FLUSH_EVERY old)
        writes it; a one-shot timer writes what a quiet moment leaves. No thread runs
        while requests keep coming: a second busy thread in a worker process costs
        every request GIL hand-offs (measured: ~50 µs of CPU per webhook)."""
        due = len(self._buffer) >= FLUSH_AT or now - self._first >= FLUSH_EVERY
        arm = not due and self._timer is None
        if arm:
            self._timer = threading.Timer(FLUSH_EVERY, self._on_timer)
            self._timer.daemon = True
        return due, arm

    def _after(self, due: bool, arm: bool) -> None:
        if due:
            self.flush()
        elif arm and self._timer is not None:
            self._timer.start()

    def _on_timer(self) -> None:
        with self._lock:
            self._timer = None
        self.flush()

    def flush(self) -> int:
        """Write what is buffered in one pipeline; returns how many entries."""
        with self._lock:
            entries, self._buffer = self._buffer, []
            counts, self._counts = self._counts, Counter()
            seen, self._last = self._last, {}
        if not entries and not counts:
            return 0
        now = time.time()
        last = {source: repr(t) for source, t in seen.items()}
        args: list[Any] = [self.maxlen]
        for meta, headers, body in entries:
            args += [orjson.dumps(meta), headers, body]
            source = meta["source"]
            counts[f"wh|{source}|{meta['outcome']}"] += 1
            if meta["outcome"] == "rejected":
                counts[f"rj|{source}|{meta['reason']}"] += 1
            last[source] = repr(meta["t"])
        pipe = self.redis.pipeline(transaction=False)
        if entries:
            # EVALSHA directly: a Script in a pipeline asks SCRIPT EXISTS on every execute.
            pipe.evalsha(self._append.sha, 1, LOG, *args)
        pipe.xtrim(LOG, minid=oldest_kept(self.age), approximate=False)
        count_fields(pipe, counts, now)
        if last:
            pipe.hset(LAST, mapping=last)  # type: ignore[arg-type]
        with contextlib.suppress(*REDIS_ERRORS):
            try:
                pipe.execute()
            except NoScriptError:  # a restarted Redis: load the script, write again
                self._append.sha = self.redis.script_load(APPEND_LUA)
                # (the pipeline ran its other commands: only the log is written again)
                self.redis.evalsha(self._append.sha, 1, LOG, *args)
        return len(entries)


def _payload(envelope: bytes) -> str:
    """An envelope's payload as the console keeps it: text, cut at MAX_BODY."""
    return Envelope.payload(envelope)[:MAX_BODY].decode(errors="replace")


class DeliveryRecorder:
    """What workers record: the calls each event became, and each batch's fate."""

    def __init__(self, redis: Redis, settings: Settings) -> None:
        self.redis = redis
        self.details = Details(redis, settings)
        self._mapped: list[tuple[str, str, bytes, list[dict[str, Any]]]] = []

    @classmethod
    def for_settings(cls, redis: Redis, settings: Settings) -> DeliveryRecorder | None:
        return cls(redis, settings) if recording(settings) else None

    def mapped(self, envelope: Envelope, calls: Sequence[dict[str, Any]], raw: bytes) -> None:
        """Note the calls of one event and its payload (from ``raw``, the stored
        envelope), written by :meth:`commit` once the calls are durable."""
        self._mapped.append((envelope.source, envelope.id, raw, list(calls)))

    def commit(self, dead: Sequence[DeadLetter], done: bool = True) -> None:
        """Write what the last chunk became: calls waiting, or dead letters. ``done``
        False: the chunk went back to the inbox (it will be mapped again): forget it."""
        mapped, self._mapped = self._mapped, []
        if not done:
            return
        now = time.time()
        pairs: list[tuple[str, bytes]] = []
        for source, event_id, raw, calls in mapped:
            detail = {"at": now, "payload": _payload(raw), "calls": calls}
            pairs.append((event_key(source, event_id), codec.dumps(detail)))
            for call in calls:
                state = {"state": "waiting", "at": now}
                pairs.append((call_key(str(call.get("messageId"))), orjson.dumps(state)))
        for entry in dead:
            state = {"state": "dead", "at": now, "reason": entry.reason, "dlq": entry.id}
            if entry.kind == "event" and entry.source and entry.event_id:
                payload = _payload(entry.event.encode()) if entry.event else ""
                detail = {"at": now, "payload": payload, "calls": [], "dead": state}
                pairs.append((event_key(entry.source, entry.event_id), codec.dumps(detail)))
            for call in entry.calls:
                pairs.append((call_key(str(call.get("messageId"))), orjson.dumps(state)))
        self.details.write(pairs)

    def on_flush(self, ev: FlushEvent) -> None:
        """Observer of ``flushed`` and ``err``: every call of the batch gets its state."""
        now = time.time()
        if ev.event == "flushed":
            state: dict[str, Any] = {"state": "sent", "batch": ev.batch_id, "at": now}
            answer = {"status": str(ev.status), "at": repr(now), "error": ""}
        elif ev.outcome == "retry":
            state = {
                "state": "retrying",
                "batch": ev.batch_id,
                "at": now,
                "attempt": ev.attempt,
                "answer": ev.error,
                "retry_in": ev.retry_in,
            }
            answer = {
                "status": str(ev.status or ev.reason),
                "at": repr(now),
                "error": ev.error or "",
            }
        elif ev.outcome == "dead_letter":
            state = {"state": "dead", "batch": ev.batch_id, "at": now, "answer": ev.error}
            answer = {
                "status": str(ev.status or ev.reason),
                "at": repr(now),
                "error": ev.error or "",
            }
        else:  # split: the halves are new batches with their own outcomes
            return
        try:
            calls = orjson.loads(ev.payload) if ev.payload else []
        except orjson.JSONDecodeError:
            calls = []
        body = orjson.dumps(state)
        self.details.write([(call_key(str(c.get("messageId"))), body) for c in calls])
        with contextlib.suppress(*REDIS_ERRORS):
            pipe = self.redis.pipeline(transaction=False)
            pipe.hset(COLLECTOR, mapping=answer)  # type: ignore[arg-type]
            if ev.event == "flushed":
                count_fields(pipe, {"calls|sent": len(calls)}, now)
            pipe.execute()
