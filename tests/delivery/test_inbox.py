from __future__ import annotations

import time

from redis import Redis

from bridge import keys
from bridge.delivery import deadletter
from bridge.delivery.inbox import Inbox
from tests.delivery.support import push_unkicked


def test_claim_complete_moves_calls_to_the_outbox_once(redis: Redis) -> None:
    push_unkicked(redis, range(5))
    inbox = Inbox(redis)
    claim = inbox.claim(3, lease=30)
    assert claim is not None
    assert len(claim.events) == 3
    assert len(inbox) == 2
    dead = [deadletter.event_entry(claim.events[0], "mapping_error: x", "shop", "evt_0")]
    assert inbox.complete(claim, [b"1.0 {}", b"1.0 {}"], dead)
    assert redis.llen(keys.OUTBOX) == 2
    assert redis.zcard(keys.DLQ_INDEX) == 1
    assert redis.zcard(keys.INBOX_CLAIMS) == 0
    # A second completion (say, after a retry) appends nothing.
    assert not inbox.complete(claim, [b"1.0 {}"], [])
    assert redis.llen(keys.OUTBOX) == 2


def test_an_expired_claim_goes_back_to_the_head_of_the_inbox(redis: Redis) -> None:
    push_unkicked(redis, range(4))
    inbox = Inbox(redis)
    claim = inbox.claim(2, lease=1)
    assert claim is not None
    assert inbox.recover() == 0  # lease still running
    assert inbox.recover(now=time.time() + 2) == 2
    assert redis.lrange(keys.INBOX, 0, 1) == claim.events
    # The dead worker's late completion must not double the events.
    assert not inbox.complete(claim, [b"1.0 {}"], [])
    assert redis.llen(keys.OUTBOX) == 0


def test_release_hands_back_immediately(redis: Redis) -> None:
    push_unkicked(redis, range(3))
    inbox = Inbox(redis)
    claim = inbox.claim(10, lease=30)
    assert claim is not None
    assert inbox.release(claim) == 3
    assert len(inbox) == 3
    assert inbox.claim(10, lease=30) is not None
