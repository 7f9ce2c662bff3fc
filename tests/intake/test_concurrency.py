"""Many clients delivering the same event at once, through real gunicorn processes."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
from redis import Redis

from bridge import keys
from tests.intake.conftest import base_env
from tests.processes import gunicorn
from tests.signing import STRIPE_SECRET, stripe_event, stripe_headers

CLIENTS = 32


def test_same_event_from_many_clients_is_accepted_once(redis: Redis, redis_url: str) -> None:
    body = stripe_event()
    headers = stripe_headers(body, STRIPE_SECRET)
    start = threading.Barrier(CLIENTS)
    with gunicorn(base_env(redis_url), workers=4, extra=("--threads", "8")) as url:

        def deliver(_: int) -> tuple[int, str]:
            with httpx.Client(timeout=10) as http:
                http.get(f"{url}/healthz")  # connect before the barrier
                start.wait(timeout=10)
                resp = http.post(f"{url}/webhooks/stripe", content=body, headers=headers)
                return resp.status_code, resp.json()["status"]

        with ThreadPoolExecutor(CLIENTS) as pool:
            answers = list(pool.map(deliver, range(CLIENTS)))

    assert {code for code, _ in answers} == {200}
    outcomes = sorted(outcome for _, outcome in answers)
    assert outcomes.count("accepted") == 1
    assert outcomes.count("duplicate") == CLIENTS - 1
    assert redis.llen(keys.INBOX) == 1


def test_distinct_events_from_many_clients_are_all_accepted(redis: Redis, redis_url: str) -> None:
    bodies = [stripe_event() for _ in range(200)]
    with gunicorn(base_env(redis_url), workers=2) as url, httpx.Client(timeout=10) as http:
        codes = [
            http.post(
                f"{url}/webhooks/stripe", content=b, headers=stripe_headers(b, STRIPE_SECRET)
            ).status_code
            for b in bodies
        ]
    assert codes == [200] * len(bodies)
    assert redis.llen(keys.INBOX) == len(bodies)
