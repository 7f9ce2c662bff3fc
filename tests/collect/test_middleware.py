"""The page-tracking middleware in a Flask demo app, with the real durable Client on the
real test Redis: one page call per HTML page view, with the cookie's id and campaign."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask, jsonify
from redis import Redis
from werkzeug.test import Client as WSGIClient

from bridge.collect.middleware import PageTracking
from bridge.delivery import Client
from bridge.settings import Settings
from tests.collect.conftest import outbox

HTML = "<!doctype html><html><head><title>\n  Spring   Sale </title></head><body>Hi</body></html>"


@pytest.fixture
def demo(redis: Redis, redis_url: str) -> Iterator[Flask]:
    """A small shop: an HTML home page, a static file, a JSON API and a 404."""
    app = Flask("demo")

    @app.get("/")
    def home() -> str:
        return HTML

    @app.get("/api/cart")
    def cart() -> object:
        return jsonify(items=[])

    @app.post("/checkout")
    def checkout() -> str:
        return HTML

    client = Client(Settings.from_env({"REDIS_URL": redis_url}), redis=redis)
    PageTracking.init_app(app, client)
    yield app
    client.sender.close()


def test_a_page_view_with_the_browser_cookie_and_campaign(demo: Flask, redis: Redis) -> None:
    web = demo.test_client(use_cookies=False)  # the Cookie header is sent as written
    resp = web.get(
        "/?utm_source=newsletter&utm_medium=email&utm_campaign=spring&ref=x",
        headers={
            "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
            "Referer": "https://mail.example/inbox",
            "Host": "shop.example",
            "Cookie": "ajs_anonymous_id=%22anon-42%22",  # as analytics.js 1.0 wrote it
        },
    )
    assert resp.status_code == 200
    assert resp.get_data(as_text=True) == HTML  # the answer is untouched
    assert "Set-Cookie" not in resp.headers  # the visitor already has an id
    [call] = outbox(redis)
    assert call["type"] == "page"
    assert call["anonymousId"] == "anon-42"
    assert "userId" not in call
    url = "http://shop.example/?utm_source=newsletter&utm_medium=email&utm_campaign=spring&ref=x"
    expected = {
        "url": url,
        "path": "/",
        "host": "shop.example",
        "search": "?utm_source=newsletter&utm_medium=email&utm_campaign=spring&ref=x",
        "referrer": "https://mail.example/inbox",
        "title": "Spring Sale",
    }
    assert call["properties"] == expected
    assert call["context"]["page"] == expected
    campaign = {"source": "newsletter", "medium": "email", "name": "spring"}
    assert call["context"]["campaign"] == campaign
    assert call["context"]["ip"] == "127.0.0.1"
    assert call["context"]["userAgent"] == "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"


def test_a_new_visitor_gets_the_cookie_and_the_call_uses_it(demo: Flask, redis: Redis) -> None:
    web = demo.test_client()
    web.set_cookie("ajs_user_id", "user-7")
    resp = web.get("/")
    resp.close()  # as a server does once the body is written
    cookie = resp.headers["Set-Cookie"]
    assert cookie.startswith("ajs_anonymous_id=")
    assert "Path=/" in cookie
    assert "Max-Age=31536000" in cookie
    value = cookie.split(";", 1)[0].split("=", 1)[1]
    [call] = outbox(redis)
    assert call["anonymousId"] == value
    assert call["userId"] == "user-7"
    again = web.get("/")  # the browser sends the cookie back: same id, no new cookie
    again.close()
    assert "Set-Cookie" not in again.headers
    assert [c["anonymousId"] for c in outbox(redis)] == [value, value]


def test_static_json_non_get_errors_and_bots_are_not_page_views(
    demo: Flask, redis: Redis
) -> None:
    web = demo.test_client()
    for path in ("/static/app.js", "/api/cart", "/missing"):
        web.get(path).close()
    web.post("/checkout").close()
    assert web.get("/static/app.js").status_code == 404
    assert web.get("/api/cart").status_code == 200
    assert web.post("/checkout").status_code == 200
    assert web.get("/missing").status_code == 404
    bot = {"User-Agent": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"}
    resp = web.get("/", headers=bot)
    resp.close()
    assert resp.status_code == 200
    assert "Set-Cookie" not in resp.headers
    assert outbox(redis) == []


def test_plain_wsgi_apps_work_too(redis: Redis, redis_url: str) -> None:
    def app(environ: dict[str, object], start_response: object) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])  # type: ignore[operator]
        return [b"<title>Plain</title>"]

    client = Client(Settings.from_env({"REDIS_URL": redis_url}), redis=redis)
    resp = WSGIClient(PageTracking(app, client)).get("/docs", headers={"Host": "x.example"})
    assert resp.status_code == 200
    resp.close()
    [call] = outbox(redis)
    assert (call["properties"]["path"], call["properties"]["title"]) == ("/docs", "Plain")
    client.sender.close()


def test_a_redis_outage_never_breaks_the_page(redis_url: str) -> None:
    app = Flask("down")

    @app.get("/")
    def home() -> str:
        return HTML

    client = Client(
        Settings.from_env({"REDIS_URL": "redis://127.0.0.1:1/0", "BRIDGE_REDIS_TIMEOUT": "0.3"})
    )
    PageTracking.init_app(app, client)
    resp = app.test_client().get("/")
    assert resp.status_code == 200
    assert resp.get_data(as_text=True) == HTML
    client.sender.close()
