"""What the console shows, recorded in Redis by intake and delivery: small and bounded.

Layout (everything under ``bridge:console:``)::

    log            stream  webhooks (and console actions), newest last. An entry is
                           one webhook the event store did not take (fields m: JSON
                           facts, h: masked headers JSON, b: body), one burst of
                           stored webhooks (e: a JSON array of their facts, each with
                           its masked headers as "h"; n: how many), or an action (m);
                           c: the running count of webhooks up to the entry's last.
                           Trimmed to the newest BRIDGE_CONSOLE_RETENTION webhooks (a
                           burst goes whole) and to BRIDGE_CONSOLE_RETENTION_AGE seconds
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
by count and by age. Recording never fails the webhook or the job it describes, and
costs intake little: the web process buffers entries and writes each burst with one
script call (:class:`IntakeRecorder`); a stored event's payload is recorded by the
worker that maps it (:class:`DeliveryRecorder`), from the envelope it holds anyway.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
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


# KEYS[1]: the log; ARGV[1]: most webhooks kept (BRIDGE_CONSOLE_RETENTION), ARGV[2]: the
# oldest entry id kept (age); then records: 'w', facts, headers, body (one webhook, an
# entry of its own), 'a', facts, headers, body (an operator's action: no webhook), or
# 'e', n, entries (a burst of n stored webhooks as one JSON array, one stream entry).
# Each entry's 'c' is the running count of webhooks up to its last one, carried on from
# the newest entry (no counter to fall out of step with the stream), so trimming by count
# needs no bookkeeping per webhook: an entry whose last webhook is older than the newest
# ARGV[1] goes whole. An entry without 'c' (written before) counts as 0: it goes first.
APPEND_LUA = """
local function count_of(entry)
  for k = 1, #entry[2], 2 do
    if entry[2][k] == 'c' then return tonumber(entry[2][k + 1]) end
  end
  return 0
end
local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
local total = 0
if newest then total = count_of(newest) end
local i = 3
while i <= #ARGV do
  if ARGV[i] == 'e' then
    total = total + tonumber(ARGV[i + 1])
    redis.call('XADD', KEYS[1], '*', 'e', ARGV[i + 2], 'n', ARGV[i + 1], 'c', total)
    i = i + 3
  else
    if ARGV[i] == 'w' then total = total + 1 end
    redis.call('XADD', KEYS[1], '*', 'm', ARGV[i + 1], 'h', ARGV[i + 2], 'b', ARGV[i + 3],
               'c', total)
    i = i + 4
  end
end
redis.call('XTRIM', KEYS[1], 'MINID', ARGV[2])
local gone = total - tonumber(ARGV[1])
local dropped = 0
while gone > 0 do
  -- One at a time: a burst's entry is large, and a flush drops one or two.
  local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1]
  if not first or count_of(first) > gone then break end
  redis.call('XDEL', KEYS[1], first[1])
  dropped = dropped + 1
end
return dropped
"""


#: Seconds a per-minute counter hash lives: a day of them, and an hour to spare.
MINUTE_TTL = 25 * 3600


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
    """The web process's side of the log: each webhook's entry is buffered in the
    process and written with the others of its burst in one script call.

    A stored event (accepted or duplicate: nearly all traffic) is a few facts and its
    masked headers, and the entries of a burst go into *one* stream entry (a JSON
    array): a stream entry per webhook cost Redis ~8 µs of CPU per webhook, measurable
    on intake. Its payload is not copied at all: the worker that maps the event records
    it (:meth:`DeliveryRecorder.mapped`) from the envelope it holds anyway. A webhook the
    store did not take (rejected, ignored, unavailable) keeps its body in an entry of its
    own.
    """

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
        #: Webhooks the store did not take: facts, masked headers (JSON), body.
        self._buffer: list[tuple[dict[str, Any], bytes, bytes]] = []
        #: Stored events' entries (facts with their masked headers as "h").
        self._stored: list[dict[str, Any]] = []
        self._first = 0.0
        self._timer: threading.Timer | None = None

    def stored(
        self,
        *,
        source: str,
        event_id: str,
        event_type: str,
        outcome: str,
        ms: float,
        size: int,
        environ: Mapping[str, Any],
    ) -> None:
        """Buffer the entry of an event the store took (``outcome``: accepted or
        duplicate; ``size``: bytes of its payload, which the worker records)."""
        entry = {
            "kind": "webhook",
            "t": time.time(),
            "source": source,
            "type": event_type,
            "eid": event_id,
            "outcome": outcome,
            "reason": "",
            "status": 200,
            "ms": ms,
            "truncated": size > MAX_BODY,
            "h": environ_headers(environ),
        }
        self._push(entry, stored=True)

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
        """Buffer the entry of a webhook the store did not take (signature values
        masked, body capped); the headers come from ``headers`` or a WSGI ``environ``."""
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

    def add(self, entry: tuple[dict[str, Any], bytes, bytes]) -> None:
        """Buffer one entry: its facts, its (masked) headers as JSON, its body."""
        self._push(entry, stored=False)

    def _push(self, item: Any, *, stored: bool) -> None:
        if self._pid != os.getpid():
            self._reset()
        now = time.monotonic()
        with self._lock:
            if not self._buffer and not self._stored:
                self._first = now
            (self._stored if stored else self._buffer).append(item)
            due, arm = self._due(now)
        self._after(due, arm)

    def _due(self, now: float) -> tuple[bool, bool]:
        """Under the lock: is a burst due, and else must the timer be armed?

        Under load the request that fills the buffer (or finds it FLUSH_EVERY old)
        writes it; a one-shot timer writes what a quiet moment leaves. No thread runs
        while requests keep coming: a second busy thread in a worker process costs
        every request GIL hand-offs (measured: ~50 µs of CPU per webhook)."""
        due = len(self._buffer) + len(self._stored) >= FLUSH_AT or now - self._first >= FLUSH_EVERY
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
        """Write what is buffered in one pipeline; returns how many webhooks."""
        with self._lock:
            entries, self._buffer = self._buffer, []
            stored, self._stored = self._stored, []
        if not entries and not stored:
            return 0
        counts: Counter[str] = Counter()
        last: dict[str, str] = {}
        args: list[Any] = [self.maxlen, oldest_kept(self.age)]
        for meta, headers, body in entries:
            args += ["w", orjson.dumps(meta), headers, body]
            counts[f"wh|{meta['source']}|{meta['outcome']}"] += 1
            if meta["outcome"] == "rejected":
                counts[f"rj|{meta['source']}|{meta['reason']}"] += 1
            last[meta["source"]] = repr(meta["t"])
        if stored:
            args += ["e", len(stored), orjson.dumps(stored)]
            for entry in stored:
                counts[f"wh|{entry['source']}|{entry['outcome']}"] += 1
                last[entry["source"]] = repr(entry["t"])
        pipe = self.redis.pipeline(transaction=False)
        # EVALSHA directly: a Script in a pipeline asks SCRIPT EXISTS on every execute.
        pipe.evalsha(self._append.sha, 1, LOG, *args)
        count_fields(pipe, counts, time.time())
        pipe.hset(LAST, mapping=last)  # type: ignore[arg-type]
        with contextlib.suppress(*REDIS_ERRORS):
            try:
                pipe.execute()
            except NoScriptError:  # a restarted Redis: load the script, write again
                # (the pipeline ran its other commands: only the log is written again)
                self._append.sha = self.redis.script_load(APPEND_LUA)
                self.redis.evalsha(self._append.sha, 1, LOG, *args)
        return len(entries) + len(stored)


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
