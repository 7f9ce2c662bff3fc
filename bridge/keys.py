"""Redis key names and queue names: the one place they are spelled.

Every key bridge writes starts with ``bridge:`` so that an operator can see (and
``SCAN``) what belongs to it; RQ's own keys start with ``rq:``.
"""

from __future__ import annotations

#: Key prefix of everything bridge stores in Redis.
PREFIX = "bridge"

#: RQ queue that workers listen on (``rq worker bridge``).
QUEUE = "bridge"

#: List of verified event envelopes waiting for a worker (RPUSH by intake).
INBOX = f"{PREFIX}:inbox"

#: Marker set (NX, with a TTL) by intake when it pushes to an idle inbox; whoever sets
#: it enqueues one drain job. The drain job deletes it when it starts.
INBOX_KICK = f"{PREFIX}:inbox:kick"

#: Seconds the kick marker lives: if the web process dies between pushing the event and
#: enqueueing the drain job, a later webhook (or a worker's sweep) re-kicks after this.
INBOX_KICK_TTL = 5

#: Import path of the RQ job that drains the inbox (a string: the web process never
#: imports the delivery code).
DRAIN_JOB = "bridge.delivery.jobs.drain_inbox"

#: Key ``GET /readyz`` writes (with a short TTL) to learn that Redis takes writes, not
#: only that it answers: a full or read-only Redis answers PING but refuses events.
READY_PROBE = f"{PREFIX}:readyz"

#: Hash of cluster-wide counters and histogram buckets rendered by ``GET /metrics``.
METRICS = f"{PREFIX}:metrics"


def dedup(source: str, event_id: str) -> str:
    """Key remembering that ``source`` delivered ``event_id`` (lives BRIDGE_DEDUP_TTL).

    The layout before :mod:`bridge.dedup`: still checked, no longer written."""
    return f"{PREFIX}:dedup:{source}:{event_id}"


#: Prefix of the hashes remembering event ids: ``bridge:seen:<bucket>:<shards>:<shard>``,
#: fields the ids' digests (see :mod:`bridge.dedup`).
DEDUP_SHARD_PREFIX = f"{PREFIX}:seen:"

#: Hash: ``<bucket>`` -> its shard counts, one per generation (``"1,4,16"``);
#: ``<bucket>:n`` -> digests remembered in it.
DEDUP_META = f"{PREFIX}:seen:meta"


def dedup_shard(bucket: int, shards: int, shard: int) -> str:
    """Hash of the digests of ids first seen in time bucket ``bucket`` (Unix time //
    bucket width), in its generation of ``shards`` shards, whose first three bytes are
    ``shard`` modulo ``shards``. Built by the accept script; spelled here for tools."""
    return f"{DEDUP_SHARD_PREFIX}{bucket}:{shards}:{shard}"


def dedup_signed(source: str, digest: str) -> str:
    """Key remembering the digest of signed content from a provider that does not sign
    its event id (GitHub): a replay under a new id finds it (lives BRIDGE_DEDUP_TTL).
    The layout before :mod:`bridge.dedup`: still checked, no longer written."""
    return f"{PREFIX}:dedup-signed:{source}:{digest}"


def identity(source: str, provider_customer: str) -> str:
    """Key mapping a provider customer id to the user id learned for it."""
    return f"{PREFIX}:identity:{source}:{provider_customer}"


# --- delivery (bridge.delivery) -------------------------------------------------------

#: Prefix of the per-claim lists holding events a drain job took from the inbox.
INBOX_CLAIM_PREFIX = f"{PREFIX}:inbox:claim:"

#: Sorted set: claim id -> lease deadline (Unix s). Expired claims go back to the inbox.
INBOX_CLAIMS = f"{PREFIX}:inbox:claims"

#: List of calls waiting to be batched; each item is ``"<received_at> <call JSON>"``.
OUTBOX = f"{PREFIX}:outbox"

#: Unix time since which the outbox has held calls (the flush-interval clock).
OUTBOX_SINCE = f"{PREFIX}:outbox:since"

#: Hash: batch id -> the batch's calls as one JSON array (the bytes that are sent).
BATCHES = f"{PREFIX}:batches"

#: Hash: batch id -> JSON metadata (attempts, calls, created, received_at stats).
BATCH_META = f"{PREFIX}:batches:meta"

#: Sorted set: batch id -> when it may be taken: its lease deadline while in flight, its
#: next attempt while waiting to retry. One set is both the visibility timeout and the
#: retry schedule.
BATCHES_DUE = f"{PREFIX}:batches:due"

#: Hash: dead-letter id -> JSON entry (calls or event, reason, collector's answer, when).
DLQ = f"{PREFIX}:dlq"

#: Sorted set: dead-letter id -> when it was dead-lettered (for listing in order).
DLQ_INDEX = f"{PREFIX}:dlq:index"

#: Hash: how drain jobs have been failing: ``failures`` (in a row), ``at`` (Unix s of
#: the last failure), ``error`` (its reason). Deleted by the next drain job that
#: succeeds; ``bridge healthcheck --worker`` reports a worker stuck failing from it.
DRAIN_HEALTH = f"{PREFIX}:drain:health"


def inbox_claim(claim_id: str) -> str:
    """List holding the events of one drain-job claim."""
    return f"{INBOX_CLAIM_PREFIX}{claim_id}"
