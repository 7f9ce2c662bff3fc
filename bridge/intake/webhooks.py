"""``POST /webhooks/<source>``: verify, deduplicate, make durable, answer.

Order matters: the size limit is enforced while reading (never buffering more than
the limit), the signature is checked on the exact raw bytes before anything is
parsed, and 2xx is returned only after the event is in Redis.

Whatever the request, the answer is a 2xx, a 4xx with a reason (counted in
``bridge_webhooks_rejected_total``), or a 503 when Redis cannot take the event: a body
that cannot be read and any failure inside a verifier are 400s, never 500s.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import cast

import orjson
from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from bridge import metrics
from bridge.console.record import IntakeRecorder
from bridge.errors import (
    PayloadTooLarge,
    SourceOff,
    StoreUnavailable,
    UnknownSource,
    UnreadableBody,
    WebhookError,
)
from bridge.intake.state import IntakeState
from bridge.log import get_logger
from bridge.providers import verify_closed

bp = Blueprint("webhooks", __name__)
log = get_logger("bridge.intake")

#: Label used for requests to sources that do not exist (keeps metric cardinality bounded).
UNKNOWN_SOURCE_LABEL = "_unknown"


def _read_body(limit: int) -> bytes:
    """The raw body, refusing (413) before reading more than ``limit`` bytes, and
    (400) a body the server cannot read (the server's own errors for broken chunked
    encoding or a cut-off body surface here, inside the view)."""
    try:
        return _read_limited(limit)
    except PayloadTooLarge:
        raise
    except Exception as exc:
        raise UnreadableBody(f"the request body could not be read ({type(exc).__name__})") from exc


def _read_limited(limit: int) -> bytes:
    length = request.content_length
    if length is not None and length > limit:
        raise PayloadTooLarge(f"body is {length} bytes; the limit is {limit}")
    # No or honest Content-Length: read at most limit + 1 bytes to detect overflow
    # (chunked bodies have no length) without holding a large body in memory.
    stream = request.stream
    parts: list[bytes] = []
    size = 0
    while size <= limit:
        try:
            part = stream.read(limit + 1 - size)
        except RequestEntityTooLarge:  # werkzeug's own guard (MAX_CONTENT_LENGTH) fired
            size = limit + 1
            break
        if not part:
            break
        parts.append(part)
        size += len(part)
    if size > limit:
        raise PayloadTooLarge(f"body is over the limit of {limit} bytes")
    return parts[0] if len(parts) == 1 else b"".join(parts)


@bp.post("/webhooks/<source>")
def receive(source: str) -> tuple[Response, int]:
    """Receive one provider webhook for ``source`` (a mapping file's stem)."""
    state: IntakeState = current_app.extensions["bridge"]
    started = time.perf_counter()
    entry = state.catalogue.get(source)
    recorder = state.recorder  # the console's log, when it is on
    fields: dict[str, object] = {"source": source}
    body = b""
    try:
        if entry is None:
            fields["source"] = UNKNOWN_SOURCE_LABEL
            raise UnknownSource(f"no mapping for source {source!r}")
        if not entry.on:
            raise SourceOff(f"source {source!r} is off: {entry.reason}")
        mapping = entry.mapping
        body = _read_body(state.settings.max_body_bytes)
        event = verify_closed(
            entry.provider,
            body,
            # Werkzeug's Headers: a case-insensitive read-only mapping of str to str.
            cast("Mapping[str, str]", request.headers),
            mapping.secrets,
            tolerance=mapping.tolerance,
            now=time.time(),
            # Only schemes that sign the URL pay for building it.
            url=(mapping.public_url or request.url)
            if getattr(entry.provider, "signs_url", False)
            else "",
        )
        fields.update(event_id=event.id, event_type=event.type)
        if not mapping.handles(event.type):
            state.store.count(metrics.WEBHOOKS_IGNORED, source=source)
            outcome = "ignored"
            if recorder is not None:
                _record(recorder, fields, "ignored", "", 200, started, body)
        else:
            outcome = state.store.accept(source, event).value
            if recorder is not None:
                recorder.stored(
                    source=source,
                    event_id=event.id,
                    event_type=event.type,
                    outcome=outcome,
                    ms=_ms(started),
                    size=len(event.raw),
                    environ=request.environ,
                )
    except WebhookError as exc:
        state.store.count(
            metrics.WEBHOOKS_REJECTED, source=str(fields["source"]), reason=exc.reason
        )
        ms = _ms(started)
        log.warning(
            "webhook",
            outcome="rejected",
            status=exc.status,
            reason=exc.reason,
            error=exc.message,
            ms=ms,
            **exc.context,
            **fields,
        )
        if recorder is not None:
            _record(recorder, fields, "rejected", exc.reason, exc.status, started, body)
        answer = _json({"error": exc.message, "reason": exc.reason}, exc.status)
        if isinstance(exc, UnreadableBody):
            # The rest of the body is unreadable too: the server must not try to drain
            # it to keep the connection alive.
            answer[0].headers["Connection"] = "close"
        return answer
    except StoreUnavailable as exc:
        log.error(
            "webhook",
            outcome="unavailable",
            status=503,
            reason=exc.reason,
            error=exc.message,
            ms=_ms(started),
            **fields,
        )
        if recorder is not None:
            _record(recorder, fields, "unavailable", exc.reason, 503, started, body)
        return _json({"error": _UNAVAILABLE[exc.reason], "reason": exc.reason}, 503)
    log.info("webhook", outcome=outcome, status=200, ms=_ms(started), **fields)
    return _json({"status": outcome, "id": fields.get("event_id")}, 200)


def _record(
    recorder: IntakeRecorder,
    fields: dict[str, object],
    outcome: str,
    reason: str,
    status: int,
    started: float,
    body: bytes,
) -> None:
    """Buffer the console's log entry of a webhook the event store did not take."""
    event_id, event_type = fields.get("event_id"), fields.get("event_type")
    recorder.webhook(
        source=str(fields["source"]),
        event_id=str(event_id) if event_id is not None else None,
        event_type=str(event_type) if event_type is not None else None,
        outcome=outcome,
        reason=reason,
        status=status,
        ms=_ms(started),
        body=body,
        environ=request.environ,
    )


#: What a provider is told for each StoreUnavailable reason (the log line has detail).
_UNAVAILABLE = {
    "unavailable": "event store unavailable; retry later",
    "store_full": "event store is full; retry later",
    "store_refusing_writes": "event store is refusing writes; retry later",
    "store_not_replicated": "event not yet on enough replicas; retry later",
}


def _json(body: dict[str, object], status: int) -> tuple[Response, int]:
    # orjson + a bare Response: a measurable share of the per-webhook cost with jsonify.
    return Response(orjson.dumps(body), status=status, mimetype="application/json"), status


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
