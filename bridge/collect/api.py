"""The Segment-compatible collection API: ``/v1/track`` ... ``/v1/batch`` and friends.

Paths and conventions are the ones the official libraries use, so pointing their host
at bridge is the only change a site makes:

- ``POST /v1/track|identify|page|screen|group|alias`` — one call; analytics.js posts the
  same to the short paths ``/v1/t|i|p|s|g|a`` as ``text/plain`` (no CORS preflight)
  with ``writeKey`` inside the body;
- ``POST /v1/batch`` (and ``/v1/b``, ``/v1/import``) — ``{"batch": [...]}``; server
  libraries authenticate with HTTP Basic (the write key as user) or ``writeKey`` in the
  body (analytics-node);
- ``GET /v1/projects/<writeKey>/settings`` — what analytics.js loads first; it points
  the browser's Segment.io destination back at this host.

Answers: 200 ``{"success": true}`` once every accepted call is durable in Redis; 400
naming each refused call by index (the valid calls of the same batch are kept); 401 for
an unknown write key; 403 for a browser origin or client IP the source does not allow
(without CORS headers, so the browser reads nothing); 404 when no first-party source is
on; 413 over 500 KB; 429 with ``Retry-After`` over a rate limit; 503 when Redis cannot
take the calls.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
import zlib
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
from flask import Blueprint, Flask, Response, current_app, request

from bridge.catalogue import Catalogue
from bridge.collect.site import Site, Sites
from bridge.collect.store import (
    COLLECT_DROPPED,
    COLLECT_REJECTED,
    CallStore,
)
from bridge.collect.validate import CALL_TYPES, InvalidCall, encode, sanitise
from bridge.errors import MappingError, PayloadTooLarge, StoreUnavailable
from bridge.intake.webhooks import _read_body
from bridge.log import get_logger
from bridge.settings import Settings

__all__ = ["MAX_BATCH_BODY", "CollectState", "bp", "init_app"]

bp = Blueprint("collect", __name__)
log = get_logger("bridge.collect")

#: Segment's limit for one request body.
MAX_BATCH_BODY = 500 * 1024

#: Path segment -> call type (None: a batch).
PATHS: dict[str, str | None] = {
    **{kind: kind for kind in CALL_TYPES},
    **{letter: kind for kind, letter in CALL_TYPES.items()},
    "batch": None,
    "b": None,
    "import": None,
}

EXTENSION = "bridge.collect"


class CollectState:
    """What the blueprint needs: the first-party sources by key and their store."""

    def __init__(self, sites: Sites, store: CallStore) -> None:
        self.sites = sites
        self.store = store


def init_app(app: Flask, settings: Settings, catalogue: Catalogue, redis: Any) -> None:
    """Attach the collection API to ``app`` (the web app factory calls this)."""
    app.extensions[EXTENSION] = CollectState(
        Sites.from_catalogue(catalogue), CallStore(redis, settings.dedup_ttl)
    )
    app.register_blueprint(bp)


def _state() -> CollectState:
    state: CollectState = current_app.extensions[EXTENSION]
    return state


def _json(body: dict[str, Any], status: int, site: Site | None = None) -> Response:
    response = Response(orjson.dumps(body), status=status, mimetype="application/json")
    origin = request.headers.get("Origin")
    if origin and site is not None and site.origin_allowed(origin):
        _cors(response, origin)
    return response


def _cors(response: Response, origin: str) -> None:
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
    response.headers["Access-Control-Allow-Headers"] = "Content-Type, Authorization"
    response.headers["Access-Control-Max-Age"] = "86400"
    response.vary.add("Origin")


def _refuse(
    status: int, reason: str, message: str, site: Site | None = None, source: str = "_unknown"
) -> Response:
    _state().store.count(COLLECT_REJECTED, source=source, reason=reason)
    log.warning(
        "collect", outcome="rejected", status=status, reason=reason, error=message, source=source
    )
    return _json({"error": message, "reason": reason}, status, site)


def _allowing(origin: str) -> Site | None:
    """A first-party source that allows browsers on ``origin``, if any."""
    if not origin:
        return None
    return next((s for s in _state().sites.by_key.values() if s.origin_allowed(origin)), None)


def _client_ip(site: Site) -> str:
    if site.forwarded_hops:
        hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",")]
        hops = [h for h in hops if h]
        if len(hops) >= site.forwarded_hops:
            return hops[-site.forwarded_hops]
    return request.remote_addr or ""


def _basic_key() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic" or not token:
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.split(":", 1)[0]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _parse(raw: bytes) -> Any:
    if request.headers.get("Content-Encoding", "").lower() == "gzip":
        # Inflate at most one byte over the limit: a small "gzip bomb" never fills memory.
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            raw = inflater.decompress(raw, MAX_BATCH_BODY + 1)
        except zlib.error:
            raise ValueError("body is not valid gzip") from None
        if len(raw) > MAX_BATCH_BODY:
            raise PayloadTooLarge(f"body is over the limit of {MAX_BATCH_BODY} bytes")
        if not inflater.eof:
            raise ValueError("body is not valid gzip (truncated)")
    return json.loads(raw, parse_float=Decimal, parse_constant=_reject_constant)


@bp.route("/v1/<path>", methods=["OPTIONS"])
@bp.route("/v1/projects/<key>/settings", methods=["OPTIONS"])
def preflight(path: str = "", key: str = "") -> Response:
    """CORS preflight: answered for origins some first-party source allows."""
    origin = request.headers.get("Origin", "")
    if not origin or _allowing(origin) is None:
        return _refuse(403, "origin_not_allowed", f"origin {origin[:100]!r} is not allowed")
    response = Response(status=204)
    _cors(response, origin)
    return response


@bp.get("/v1/projects/<key>/settings")
def settings(key: str) -> Response:
    """The settings analytics.js loads: its Segment.io destination points back here."""
    site = _state().sites.get(key)
    if site is None:
        return _refuse(404, "unknown_write_key", "no source has this write key")
    origin = request.headers.get("Origin")
    if origin and not site.origin_allowed(origin):
        return _refuse(
            403, "origin_not_allowed", f"origin {origin[:100]!r} is not allowed", source=site.name
        )
    body = {
        "integrations": {
            "Segment.io": {
                "apiKey": key,
                "apiHost": f"{request.host}/v1",
                "protocol": request.scheme,
                "unbundledIntegrations": [],
                "addBundledMetadata": True,
                "maybeBundledConfigIds": {},
                "versionSettings": {"version": "4.4.7", "componentTypes": ["browser"]},
            }
        },
        "plan": {
            "track": {"__default": {"enabled": True, "integrations": {}}},
            "identify": {"__default": {"enabled": True}},
            "group": {"__default": {"enabled": True}},
        },
        "edgeFunction": {},
        "analyticsNextEnabled": True,
        "middlewareSettings": {},
        "enabledMiddleware": {},
        "metrics": {"sampleRate": 0},
        "legacyVideoPluginsEnabled": False,
        "remotePlugins": [],
    }
    response = _json(body, 200, site)
    response.headers["Cache-Control"] = "public, max-age=60"
    return response


@bp.post("/v1/<path>")
def collect(path: str) -> Response:
    """Receive one call or a batch from a Segment library."""
    started = time.perf_counter()
    state = _state()
    if path not in PATHS:
        return _refuse(404, "unknown_path", f"/v1/{path} is not a collection path")
    kind = PATHS[path]
    if not state.sites:
        return _refuse(
            404,
            "collection_off",
            "first-party collection is off: no `provider: segment` source is on "
            "(set BRIDGE_WRITE_KEYS)",
        )
    try:
        raw = _read_body(MAX_BATCH_BODY)
    except PayloadTooLarge as exc:
        return _refuse(413, exc.reason, exc.message)
    try:
        body = _parse(raw)
    except PayloadTooLarge as exc:
        return _refuse(413, exc.reason, exc.message)
    except (ValueError, RecursionError) as exc:
        return _refuse(400, "malformed_body", f"body is not JSON: {str(exc)[:80]}")
    if not isinstance(body, dict):
        return _refuse(400, "malformed_body", "body must be a JSON object")
    calls: Any = [body] if kind is not None else body.get("batch")
    if not isinstance(calls, list):
        return _refuse(400, "malformed_body", "a batch body needs a `batch` array")
    found: Any = _basic_key() or body.get("writeKey")
    if not isinstance(found, str) and calls and isinstance(calls[0], dict):
        found = calls[0].get("writeKey")
    key = found if isinstance(found, str) else ""
    site = state.sites.get(key) if key else None
    if site is None:
        # The browser may read this answer only if its origin is allowed somewhere.
        anyone = _allowing(request.headers.get("Origin", ""))
        return _refuse(401, "bad_write_key", "missing or unknown write key", anyone)
    origin = request.headers.get("Origin")
    if origin and not site.origin_allowed(origin):
        return _refuse(
            403, "origin_not_allowed", f"origin {origin[:100]!r} is not allowed", source=site.name
        )
    ip = _client_ip(site)
    if site.ip_blocked(ip):
        return _refuse(403, "ip_blocked", "requests from this address are refused", site, site.name)
    return _accept(state, site, key, kind, calls, body.get("sentAt"), ip, started)


def _mid(raw: Any) -> str | None:
    """A refused call's messageId, for the answer (only when it is text)."""
    mid = raw.get("messageId") if isinstance(raw, dict) else None
    return mid[:100] if isinstance(mid, str) else None


def _accept(
    state: CollectState,
    site: Site,
    key: str,
    kind: str | None,
    calls: list[Any],
    sent_at: Any,
    ip: str,
    started: float,
) -> Response:
    now = time.time()
    received = datetime.fromtimestamp(now, UTC)
    items: list[tuple[str, bytes]] = []
    errors: list[dict[str, Any]] = []
    dropped: list[str] = []
    prefix = f"{now!r} ".encode()
    for index, raw in enumerate(calls):
        try:
            call = sanitise(raw, kind=kind, now=received, dropped=dropped.append, sent_at=sent_at)
            context = call.setdefault("context", {})
            if ip and "ip" not in context:
                context["ip"] = ip
            out, why = site.transform(call)
            if out is None:
                dropped.append(f"call: {why}")
                continue
            items.append((str(out["messageId"]), prefix + encode(out)))
        except InvalidCall as exc:
            errors.append({"index": index, "messageId": _mid(raw), "error": exc.reason})
        except MappingError as exc:
            errors.append({"index": index, "messageId": _mid(raw), "error": f"rule: {exc.message}"})
        except (TypeError, ValueError, RecursionError) as exc:
            # Any input gets a 4xx, never a 5xx: a call we cannot read is refused, logged.
            log.warning("collect_call_unreadable", error=type(exc).__name__, source=site.name)
            errors.append({"index": index, "messageId": None, "error": "call cannot be read"})
    stored = None
    if items or site.per_ip or site.per_key:
        try:
            stored = state.store.store(
                site.name,
                items,
                ip=ip,
                key=key,
                per_ip=site.per_ip,
                per_key=site.per_key,
                window=site.window,
                now=now,
                dedup_ttl=site.dedup_ttl,
            )
        except StoreUnavailable as exc:
            log.error(
                "collect", outcome="unavailable", status=503, error=exc.message, source=site.name
            )
            return _json(
                {"error": "call store unavailable; retry later", "reason": "unavailable"}, 503, site
            )
        if stored.retry_after is not None:
            response = _refuse(
                429, "rate_limited", "too many requests; retry later", site, site.name
            )
            response.headers["Retry-After"] = str(stored.retry_after)
            return response
    for reason in dropped:
        state.store.count(COLLECT_DROPPED, source=site.name, reason=reason.split(": ", 1)[-1])
    accepted = stored.accepted if stored else 0
    duplicate = stored.duplicate if stored else 0
    fields = {
        "source": site.name,
        "calls": len(calls),
        "accepted": accepted,
        "duplicate": duplicate,
        "refused": len(errors),
        "dropped": len(dropped),
        "ms": round((time.perf_counter() - started) * 1000, 3),
    }
    if errors:
        state.store.count(COLLECT_REJECTED, len(errors), source=site.name, reason="invalid_call")
        log.warning("collect", outcome="partial" if accepted else "rejected", status=400, **fields)
        message = f"{len(errors)} of {len(calls)} calls refused"
        return _json(
            {"error": message, "reason": "invalid_call", "accepted": accepted, "errors": errors},
            400,
            site,
        )
    log.info("collect", outcome="accepted", status=200, **fields)
    return _json({"success": True}, 200, site)
