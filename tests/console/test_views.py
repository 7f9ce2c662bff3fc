"""The console's pages through the real app on the real Redis: access, CSRF, escaping, masking."""

from __future__ import annotations

from collections.abc import Callable

import orjson
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis

from bridge.console import record
from bridge.console.app import create_app as create_console_app
from bridge.delivery.deadletter import DeadLetters, event_entry
from bridge.envelope import Envelope
from bridge.settings import Settings
from tests.console.conftest import TOKEN, csrf_of, flush, login, map_inbox
from tests.intake.conftest import base_env
from tests.signing import STRIPE_SECRET, stripe_event, stripe_headers

PAGES = ["/console/", "/console/events", "/console/dead-letters", "/console/playground"]


def send(client: FlaskClient, body: bytes, secret: str = STRIPE_SECRET) -> int:
    return client.post(
        "/webhooks/stripe", data=body, headers=stripe_headers(body, secret)
    ).status_code


def dead_letter(redis: Redis, event_id: str = "evt_dead_1") -> str:
    raw = Envelope.encode(
        source="stripe", id=event_id, type="x", time=1.0, received_at=1.0, raw=b'{"id":"x"}'
    )
    return DeadLetters(redis).add(event_entry(raw, "mapping_error: boom", "stripe", event_id)).id


def test_console_is_off_without_a_token(
    redis: Redis, make_console_app: Callable[..., Flask], redis_url: str
) -> None:
    from bridge.intake import create_app

    app = create_app(Settings.from_env(base_env(redis_url)))
    client = app.test_client()
    assert client.get("/console/").status_code == 404
    assert client.get("/console/login").status_code == 404
    assert send(client, stripe_event()) == 200
    assert "bridge.console" not in app.extensions
    assert not redis.exists(record.LOG)  # nothing recorded either


def test_every_page_redirects_to_login_without_a_session(anon: FlaskClient) -> None:
    for path in PAGES:
        answer = anon.get(path)
        assert answer.status_code == 302, path
        assert answer.headers["Location"].startswith("/console/login?next=")
    assert anon.get("/console/api/events").status_code == 401


def test_wrong_token_is_refused(anon: FlaskClient) -> None:
    page = anon.get("/console/login")
    answer = anon.post("/console/login", data={"token": "guess", "csrf": csrf_of(page.text)})
    assert answer.status_code == 200
    assert "not the console token" in answer.text
    assert anon.get("/console/").status_code == 302


def test_login_sets_a_strict_httponly_secure_cookie(anon: FlaskClient) -> None:
    page = anon.get("/console/login")
    answer = anon.post("/console/login", data={"token": TOKEN, "csrf": csrf_of(page.text)})
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/console/"
    cookie = answer.headers["Set-Cookie"]
    assert cookie.startswith("bridge_console=")
    for flag in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/console"):
        assert flag in cookie, flag
    assert TOKEN not in cookie
    assert anon.get("/console/").status_code == 200


def test_dev_cookie_is_not_secure(make_console_app: Callable[..., Flask]) -> None:
    client = make_console_app(BRIDGE_CONSOLE_SECURE_COOKIE="false").test_client()
    page = client.get("/console/login")
    answer = client.post("/console/login", data={"token": TOKEN, "csrf": csrf_of(page.text)})
    assert "Secure" not in answer.headers["Set-Cookie"]
    assert "HttpOnly" in answer.headers["Set-Cookie"]


def test_login_needs_the_csrf_token(anon: FlaskClient) -> None:
    anon.get("/console/login")
    assert anon.post("/console/login", data={"token": TOKEN}).status_code == 403
    assert anon.get("/console/").status_code == 302


def test_open_redirect_after_login_is_refused(anon: FlaskClient) -> None:
    page = anon.get("/console/login")
    answer = anon.post(
        "/console/login",
        data={"token": TOKEN, "csrf": csrf_of(page.text), "next": "//evil.example/console/"},
    )
    assert answer.headers["Location"] == "/console/"


def test_forged_action_without_the_csrf_token_is_refused(
    operator: FlaskClient, redis: Redis
) -> None:
    entry_id = dead_letter(redis)
    form = {"action": "drop", "id": entry_id, "confirm": "yes"}
    assert operator.post("/console/dead-letters/action", data=form).status_code == 403
    forged = {**form, "csrf": "not-the-token"}
    assert operator.post("/console/dead-letters/action", data=forged).status_code == 403
    assert DeadLetters(redis).get(entry_id) is not None  # untouched
    csrf = csrf_of(operator.get("/console/dead-letters").text)
    answer = operator.post("/console/dead-letters/action", data={**form, "csrf": csrf})
    assert answer.status_code == 302
    assert DeadLetters(redis).get(entry_id) is None


def test_actions_ask_for_confirmation_first(operator: FlaskClient, redis: Redis) -> None:
    entry_id = dead_letter(redis)
    csrf = csrf_of(operator.get("/console/dead-letters").text)
    answer = operator.post(
        "/console/dead-letters/action", data={"action": "replay", "id": entry_id, "csrf": csrf}
    )
    assert answer.status_code == 200
    assert "Yes, replay" in answer.text
    assert DeadLetters(redis).get(entry_id) is not None
    assert redis.llen("bridge:inbox") == 0


def test_replay_puts_the_event_back_and_shows_in_the_log(
    operator: FlaskClient, redis: Redis
) -> None:
    entry_id = dead_letter(redis)
    csrf = csrf_of(operator.get("/console/dead-letters").text)
    form = {"action": "replay", "id": entry_id, "csrf": csrf, "confirm": "yes"}
    answer = operator.post("/console/dead-letters/action", data=form)
    assert answer.status_code == 302
    assert DeadLetters(redis).get(entry_id) is None
    assert redis.llen("bridge:inbox") == 1  # back for the current mapping
    log = operator.get("/console/events").text
    assert "replayed" in log
    assert entry_id in log


def test_a_script_in_a_payload_renders_as_text(console_app: Flask, operator: FlaskClient) -> None:
    body = stripe_event(note="<script>alert('x')</script>")
    attack_type = "<img src=x onerror=alert(1)>"
    typed = stripe_event(event_type=attack_type)
    assert send(operator, body) == 200
    assert send(operator, typed) == 200  # a type no rule takes: ignored
    flush(console_app)
    map_inbox(console_app)  # a worker records the payload of an event it maps
    log = operator.get("/console/events").text
    assert attack_type not in log
    assert "&lt;img src=x onerror=alert(1)&gt;" in log
    event_id = orjson.loads(body)["id"]
    detail = operator.get(_detail_url(operator, event_id))
    assert "<script>alert" not in detail.text
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in detail.text
    csp = detail.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp


def _detail_url(client: FlaskClient, event_id: str) -> str:
    import re

    page = client.get(f"/console/events?event_id={event_id}").text
    found = re.search(r'href="(/console/events/[0-9]+-[0-9]+(?:\.[0-9]+)?)"', page)
    assert found, page
    return found.group(1)


def test_signatures_and_secrets_are_never_rendered(
    console_app: Flask, operator: FlaskClient
) -> None:
    body = stripe_event()
    headers = stripe_headers(body, STRIPE_SECRET)
    signature = headers["Stripe-Signature"].split("v1=")[1]
    assert operator.post("/webhooks/stripe", data=body, headers=headers).status_code == 200
    flush(console_app)
    detail = operator.get(_detail_url(operator, orjson.loads(body)["id"])).text
    assert "Stripe-Signature" in detail
    assert "masked" in detail
    pages = [detail] + [operator.get(p).text for p in PAGES]
    for html in pages:
        assert signature not in html
        assert STRIPE_SECRET not in html
        assert TOKEN not in html


def test_personal_data_is_masked_until_revealed(console_app: Flask, operator: FlaskClient) -> None:
    body = stripe_event(
        data={"object": {"id": "cs_1", "customer_details": {"email": "ada@example.com"}}}
    )
    assert send(operator, body) == 200
    flush(console_app)
    url = _detail_url(operator, orjson.loads(body)["id"])
    assert "Not recorded yet: a worker records the payload" in operator.get(url).text
    map_inbox(console_app)
    masked = operator.get(url).text
    assert "ada@example.com" not in masked
    assert "Reveal personal data" in masked
    assert "ada@example.com" in operator.get(url + "?reveal=1").text


def test_overview_counts_outcomes_per_source(console_app: Flask, operator: FlaskClient) -> None:
    first, second = stripe_event(), stripe_event()
    assert send(operator, first) == 200
    assert send(operator, second) == 200
    assert send(operator, first) == 200  # duplicate
    assert send(operator, stripe_event(), secret="whsec_wrong") == 400
    flush(console_app)
    from bridge.console import data

    view = data.overview(
        console_app.extensions["bridge.console"].redis,
        [s.describe() for s in console_app.extensions["bridge.console"].catalogue],
    )
    stripe = next(row for row in view["sources"] if row["source"] == "stripe")
    expected = {"accepted": 2, "duplicate": 1, "ignored": 0, "rejected": 1}
    assert stripe["hour"] == expected
    assert stripe["day"] == expected
    assert stripe["rejected_by"] == {"bad_signature": (1, 1)}
    assert sum(p["webhooks"] for p in view["series"]) == 4
    page = operator.get("/console/").text
    assert "2 / 2" in page
    assert "bad_signature: 1 / 1" in page


def test_playground_previews_without_delivering(operator: FlaskClient, redis: Redis) -> None:
    csrf = csrf_of(operator.get("/console/playground").text)
    body = stripe_event().decode()
    answer = operator.post(
        "/console/playground", data={"source": "stripe", "payload": body, "csrf": csrf}
    )
    assert answer.status_code == 200, answer.text[:2000]
    assert "&#34;type&#34;: &#34;track&#34;" in answer.text
    assert redis.llen("bridge:inbox") == 0
    assert redis.llen("bridge:outbox") == 0
    bad = operator.post(
        "/console/playground", data={"source": "stripe", "payload": "{nope", "csrf": csrf}
    )
    assert "the payload is not JSON" in bad.text


def test_on_a_port_of_its_own(make_console_app: Callable[..., Flask], redis_url: str) -> None:
    web = make_console_app(BRIDGE_CONSOLE_PORT="9001")
    web_client = web.test_client()
    assert web_client.get("/console/login").status_code == 404
    assert send(web_client, stripe_event()) == 200
    flush(web)  # the web process still records
    env = {**base_env(redis_url), "BRIDGE_CONSOLE_TOKEN": TOKEN, "BRIDGE_CONSOLE_PORT": "9001"}
    console = create_console_app(Settings.from_env(env))
    console.testing = True
    with console.test_client() as client:
        assert client.get("/console/").status_code == 302
        login(client)
        assert "checkout.session.completed" in client.get("/console/events").text


def test_every_outcome_shows_its_payload(console_app: Flask, operator: FlaskClient) -> None:
    import re

    body = stripe_event(note="first-delivery")
    forged = stripe_event(note="forged-one")
    assert send(operator, body) == 200
    assert send(operator, body) == 200  # the provider's retry: a duplicate
    assert send(operator, forged, secret="whsec_wrong") == 400
    flush(console_app)
    map_inbox(console_app)
    # A forged webhook has no verified event id: it is found by its outcome.
    for query, note, outcomes in (
        (f"event_id={orjson.loads(body)['id']}", "first-delivery", {"accepted", "duplicate"}),
        ("outcome=rejected", "forged-one", {"rejected"}),
    ):
        page = operator.get(f"/console/events?{query}").text
        urls = re.findall(r'href="(/console/events/[0-9]+-[0-9]+(?:\.[0-9]+)?)"', page)
        assert len(urls) == len(outcomes)
        seen = set()
        for url in urls:
            detail = operator.get(url).text
            assert note in detail, url
            seen |= {o for o in outcomes if f"o-{o}" in detail}
        assert seen == outcomes


def test_a_broken_log_never_fails_a_webhook(
    console_app: Flask, operator: FlaskClient, redis: Redis
) -> None:
    from bridge import keys

    redis.set(record.LOG, "not a stream")  # every write to the log is refused (WRONGTYPE)
    body = stripe_event()
    assert send(operator, body) == 200
    assert send(operator, stripe_event(), secret="whsec_wrong") == 400
    flush(console_app)  # the refused write is swallowed
    assert redis.llen(keys.INBOX) == 1  # the event itself is stored


def test_redis_gone_is_a_503_with_recording_on(make_console_app: Callable[..., Flask]) -> None:
    from bridge.devtools.redis_server import free_port

    app = make_console_app(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    with app.test_client() as client:
        assert send(client, stripe_event()) == 503
        body = stripe_event()
        answer = client.post(
            "/webhooks/stripe", data=body, headers=stripe_headers(body, STRIPE_SECRET)
        )
        assert answer.status_code == 503
        assert answer.json == {
            "error": "event store unavailable; retry later",
            "reason": "unavailable",
        }
    flush(app)  # nothing to write to: swallowed, not raised
