"""Server-side page views for any WSGI app (Flask, Django, ...), joined to the browser's.

    from bridge.collect.middleware import PageTracking
    from bridge.delivery import Client

    app.wsgi_app = PageTracking(app.wsgi_app, Client())     # Flask
    application = PageTracking(get_wsgi_application(), Client())   # Django (wsgi.py)

For each ``GET`` answered ``200`` with an HTML body it records one ``page`` call through
the durable :class:`~bridge.delivery.Client` (one Redis write, made when the server closes
the response, so the visitor never waits on it and no network round trip is added):

- identity from the ``ajs_anonymous_id`` cookie that analytics.js reads and writes (set
  here, for a year, when the visitor has none, so the browser's later calls share it),
  and ``ajs_user_id`` when the site identified the visitor;
- ``url``, ``path``, ``host``, ``search``, ``referrer`` and (read from the page's
  ``<title>`` as it streams out) ``title`` as properties, and the same in
  ``context.page``;
- ``ip`` and ``userAgent`` in ``context``; ``utm_*`` parameters as ``context.campaign``
  (``utm_campaign`` is its ``name``).

Static files (by path prefix and extension), non-HTML answers, other methods and known
bots (by User-Agent) are skipped.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from http.cookies import SimpleCookie
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote

from bridge.log import get_logger

__all__ = ["BOTS", "PageTracking", "cookie_value"]

log = get_logger("bridge.collect.middleware")

#: User-Agents that are crawlers, previews and monitors, not visitors.
BOTS = re.compile(
    r"bot\b|bot/|crawl|spider|slurp|archiver|facebookexternalhit|embedly|preview|"
    r"pingdom|uptime|monitor|lighthouse|curl/|wget/|python-requests|httpx/|go-http-client",
    re.IGNORECASE,
)

#: Paths of static files (prefixes and extensions).
STATIC_PREFIXES = ("/static/", "/assets/", "/favicon")
STATIC_EXTENSIONS = (
    ".js", ".css", ".map", ".png", ".jpg", ".jpeg", ".gif", ".svg", ".ico", ".webp",
    ".woff", ".woff2", ".ttf", ".txt", ".xml", ".json", ".pdf", ".zip",
)  # fmt: skip

#: analytics.js's cookie names.
ANONYMOUS_COOKIE = "ajs_anonymous_id"
USER_COOKIE = "ajs_user_id"

_CAMPAIGN = {
    "utm_source": "source",
    "utm_medium": "medium",
    "utm_campaign": "name",
    "utm_term": "term",
    "utm_content": "content",
}
_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_SNIFF_BYTES = 32 * 1024

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class PageClient(Protocol):
    """What the middleware needs of :class:`bridge.delivery.Client`."""

    def page(
        self,
        user_id: str | None = None,
        category: str | None = None,
        name: str | None = None,
        properties: dict[str, Any] | None = None,
        **kw: Any,
    ) -> str: ...


def cookie_value(raw: str | None) -> str | None:
    """An analytics.js cookie's id: URL-decoded, JSON-unquoted (older versions quote)."""
    if not raw:
        return None
    text = unquote(raw).strip()
    if text.startswith('"'):
        try:
            text = str(json.loads(text))
        except ValueError:
            text = text.strip('"')
    return text or None


class PageTracking:
    """WSGI middleware recording one ``page`` call per HTML page view."""

    def __init__(
        self,
        app: WSGIApp,
        client: PageClient,
        *,
        cookie_max_age: int = 365 * 24 * 3600,
        cookie_domain: str | None = None,
        forwarded_hops: int = 0,
        skip: Callable[[dict[str, Any]], bool] | None = None,
    ) -> None:
        self.app = app
        self.client = client
        self.cookie_max_age = cookie_max_age
        self.cookie_domain = cookie_domain
        self.forwarded_hops = forwarded_hops
        self.skip = skip

    @classmethod
    def init_app(cls, flask_app: Any, client: PageClient, **options: Any) -> PageTracking:
        """Wrap a Flask app's WSGI callable (its routes and extensions are unchanged)."""
        middleware = cls(flask_app.wsgi_app, client, **options)
        flask_app.wsgi_app = middleware
        return middleware

    def tracked(self, environ: dict[str, Any]) -> bool:
        """Whether this request may be a page view (before the answer is known)."""
        if environ.get("REQUEST_METHOD") != "GET":
            return False
        path = str(environ.get("PATH_INFO") or "/")
        if path.startswith(STATIC_PREFIXES) or path.lower().endswith(STATIC_EXTENSIONS):
            return False
        if BOTS.search(str(environ.get("HTTP_USER_AGENT") or "")):
            return False
        return not (self.skip is not None and self.skip(environ))

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if not self.tracked(environ):
            return self.app(environ, start_response)
        cookies = SimpleCookie()
        try:
            cookies.load(str(environ.get("HTTP_COOKIE") or ""))
        except Exception:  # a malformed Cookie header is the visitor's, not ours
            cookies = SimpleCookie()
        anonymous = (
            cookie_value(cookies[ANONYMOUS_COOKIE].value) if ANONYMOUS_COOKIE in cookies else None
        )
        user = cookie_value(cookies[USER_COOKIE].value) if USER_COOKIE in cookies else None
        view = _View(anonymous_id=anonymous or str(uuid.uuid4()), user_id=user, new=not anonymous)

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            content_type = next((v for k, v in headers if k.lower() == "content-type"), "")
            view.html = status.startswith("200") and content_type.startswith("text/html")
            if view.html and view.new:
                headers = [*headers, ("Set-Cookie", self._cookie(view.anonymous_id, environ))]
            return (
                start_response(status, headers, exc_info)
                if exc_info
                else start_response(status, headers)
            )

        body = self.app(environ, start)
        return _Closing(body, view, lambda: self._record(environ, view))

    def _cookie(self, value: str, environ: dict[str, Any]) -> str:
        parts = [f"{ANONYMOUS_COOKIE}={value}", "Path=/", f"Max-Age={self.cookie_max_age}"]
        parts.append("SameSite=Lax")
        if self.cookie_domain:
            parts.append(f"Domain={self.cookie_domain}")
        if environ.get("wsgi.url_scheme") == "https":
            parts.append("Secure")
        return "; ".join(parts)

    def _ip(self, environ: dict[str, Any]) -> str | None:
        if self.forwarded_hops:
            hops = [h.strip() for h in str(environ.get("HTTP_X_FORWARDED_FOR", "")).split(",")]
            hops = [h for h in hops if h]
            if len(hops) >= self.forwarded_hops:
                return hops[-self.forwarded_hops]
        return environ.get("REMOTE_ADDR")

    def _record(self, environ: dict[str, Any], view: _View) -> None:
        if not view.html:
            return
        scheme = environ.get("wsgi.url_scheme", "http")
        host = str(environ.get("HTTP_HOST") or environ.get("SERVER_NAME") or "")
        path = str(environ.get("SCRIPT_NAME", "")) + str(environ.get("PATH_INFO") or "/")
        query = str(environ.get("QUERY_STRING") or "")
        search = f"?{query}" if query else ""
        url = f"{scheme}://{host}{path}{search}"
        properties: dict[str, Any] = {"url": url, "path": path, "host": host, "search": search}
        referrer = environ.get("HTTP_REFERER")
        if referrer:
            properties["referrer"] = referrer
        if view.title:
            properties["title"] = view.title
        context: dict[str, Any] = {"page": dict(properties)}
        ip = self._ip(environ)
        if ip:
            context["ip"] = ip
        agent = environ.get("HTTP_USER_AGENT")
        if agent:
            context["userAgent"] = agent
        campaign = {_CAMPAIGN[k]: v for k, v in parse_qsl(query) if k in _CAMPAIGN and v}
        if campaign:
            context["campaign"] = campaign
        try:
            self.client.page(
                user_id=view.user_id,
                anonymous_id=view.anonymous_id,
                properties=properties,
                context=context,
            )
        except Exception as exc:  # analytics must never break the site's response
            log.warning("page_view_not_recorded", error=type(exc).__name__, path=path)


class _View:
    """What one request learns on its way out."""

    def __init__(self, anonymous_id: str, user_id: str | None, new: bool) -> None:
        self.anonymous_id = anonymous_id
        self.user_id = user_id
        self.new = new
        self.html = False
        self.title: str | None = None
        self._head = b""

    def sniff(self, chunk: bytes) -> None:
        if self.title is not None or len(self._head) >= _SNIFF_BYTES:
            return
        self._head += chunk[: _SNIFF_BYTES - len(self._head)]
        found = _TITLE.search(self._head)
        if found:
            text = found.group(1).decode("utf-8", "replace")
            self.title = " ".join(text.split())[:200] or None


class _Closing:
    """The app's body, passed through; the page view is recorded once the last chunk was
    handed to the server (it asks for the next one only after writing it) or, at the
    latest, when the server closes the body."""

    def __init__(self, body: Iterable[bytes], view: _View, on_close: Callable[[], None]) -> None:
        self._body = body
        self._view = view
        self._on_close = on_close
        self._recorded = False

    def _record(self) -> None:
        if not self._recorded:
            self._recorded = True
            self._on_close()

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._body:
            if self._view.html:
                self._view.sniff(chunk)
            yield chunk
        self._record()

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._record()
