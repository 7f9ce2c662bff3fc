"""The console's pages: a Flask blueprint at ``/console``, server-rendered.

Security: every page but the login needs the session that logging in with
``BRIDGE_CONSOLE_TOKEN`` gives (cookie ``HttpOnly``, ``SameSite=Strict``, ``Secure``
unless BRIDGE_CONSOLE_SECURE_COOKIE=false); every POST needs the session's CSRF token
(form field ``csrf`` or header ``X-CSRF-Token``); Jinja escapes every value and the
Content-Security-Policy allows only the console's own script file, so a payload's
``<script>`` is text. Signature headers are masked when recorded; personal data in
payloads and calls is masked unless the operator asks to reveal it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from datetime import timedelta
from typing import Any

import orjson
from flask import (
    Blueprint,
    Flask,
    Request,
    Response,
    abort,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from werkzeug.wrappers import Response as BaseResponse

from bridge import codec
from bridge.console import data
from bridge.console.extension import ConsoleState
from bridge.console.mask import mask_personal
from bridge.envelope import Envelope
from bridge.errors import MappingError
from bridge.log import get_logger
from bridge.settings import Settings

bp = Blueprint(
    "console",
    __name__,
    url_prefix="/console",
    template_folder="templates",
    static_folder="static",
)
log = get_logger("bridge.console")

#: How long a login lasts.
SESSION_HOURS = 12
#: Endpoints reachable without a session.
PUBLIC = frozenset({"console.login", "console.static"})
#: Headers every console answer carries.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
OUTCOMES = ("accepted", "duplicate", "ignored", "rejected", "unavailable", "replayed", "dropped")


def _derive(token: str, purpose: bytes) -> str:
    return hmac.new(token.encode(), purpose, hashlib.sha256).hexdigest()


class ConsoleSessions(SecureCookieSessionInterface):
    """Sessions on ``/console`` only: a webhook must not pay for opening and signing a
    cookie session (measured: ~100 µs of CPU per request)."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if not request.path.startswith(bp.url_prefix or "/console"):
            return None  # Flask then uses a null session: nothing is read or written
        return super().open_session(app, request)


def configure(app: Flask, settings: Settings) -> None:
    """Session settings of an app that serves the console (secret derived from the token:
    every worker process agrees, and a new token ends every session)."""
    assert settings.console_token is not None
    token = settings.console_token.get_secret_value()
    app.session_interface = ConsoleSessions()
    app.secret_key = _derive(token, b"bridge-console-cookie-key")
    app.config.update(
        SESSION_COOKIE_NAME="bridge_console",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SECURE=settings.console_secure_cookie,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_PATH="/console",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=SESSION_HOURS),
    )


def _state() -> ConsoleState:
    state: ConsoleState = current_app.extensions["bridge.console"]
    return state


def _fingerprint() -> str:
    token = _state().settings.console_token
    assert token is not None
    return _derive(token.get_secret_value(), b"bridge-console-session")


def _csrf() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return str(session["csrf"])


@bp.app_template_global()
def csrf_token() -> str:
    return _csrf()


@bp.before_request
def _guard() -> BaseResponse | None:
    if request.method == "POST":
        sent = request.form.get("csrf") or request.headers.get("X-CSRF-Token") or ""
        expected = session.get("csrf")
        if not expected or not hmac.compare_digest(str(expected), sent):
            log.warning("console_csrf_refused", path=request.path)
            return Response(
                render_template("console/refused.html"), status=403, mimetype="text/html"
            )
    if request.endpoint in PUBLIC:
        return None
    if not hmac.compare_digest(str(session.get("auth", "")), _fingerprint()):
        if request.path.startswith("/console/api/"):
            body = orjson.dumps({"error": "login required"})
            return Response(body, 401, mimetype="application/json")
        return redirect(url_for("console.login", next=request.path))
    return None


@bp.after_request
def _headers(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response


def _safe_next(target: str | None) -> str:
    # Only a path inside the console: never an open redirect.
    if target and target.startswith("/console/") and not target.startswith("/console//"):
        return target
    return url_for("console.overview")


@bp.route("/login", methods=["GET", "POST"])
def login() -> BaseResponse | str:
    error = ""
    if request.method == "POST":
        given = request.form.get("token", "")
        token = _state().settings.console_token
        assert token is not None
        if hmac.compare_digest(given.encode(), token.get_secret_value().encode()):
            session.clear()
            session.permanent = True
            session["auth"] = _fingerprint()
            session["csrf"] = secrets.token_urlsafe(32)
            log.info("console_login", remote=request.remote_addr)
            return redirect(_safe_next(request.form.get("next")))
        log.warning("console_login_refused", remote=request.remote_addr)
        error = "That token is not the console token (BRIDGE_CONSOLE_TOKEN)."
    return render_template("console/login.html", error=error, next=request.values.get("next", ""))


@bp.post("/logout")
def logout() -> BaseResponse:
    session.clear()
    return redirect(url_for("console.login"))


@bp.get("/")
def overview() -> str:
    state = _state()
    sources = [s.describe() for s in state.catalogue]
    view = data.overview(state.redis, sources)
    peak = max([1, *(p["webhooks"] for p in view["series"]), *(p["calls"] for p in view["series"])])
    return render_template("console/overview.html", view=view, peak=peak, page="overview")


def _filters() -> data.Filters:
    return data.Filters(
        source=request.args.get("source", "").strip(),
        outcome=request.args.get("outcome", "").strip(),
        type=request.args.get("type", "").strip(),
        event_id=request.args.get("event_id", "").strip(),
    )


@bp.get("/events")
def events() -> str:
    state = _state()
    filters = _filters()
    rows = data.entries(state.redis, filters, before=request.args.get("before", "+"))
    return render_template(
        "console/events.html",
        rows=rows,
        filters=filters,
        sources=[s.name for s in state.catalogue],
        outcomes=OUTCOMES,
        last_id=data.last_id(state.redis),
        older=rows[-1].id if len(rows) >= data.PAGE else "",
        page="events",
    )


@bp.get("/api/events")
def events_api() -> Response:
    """Live updates: entries after ``after`` (newest first) and the new cursor."""
    state = _state()
    after = request.args.get("after", "")
    rows = data.entries_after(state.redis, after, _filters())
    newest = data.last_id(state.redis)
    return jsonify(
        entries=[r.summary() for r in rows],
        last=newest,
        urls={r.id: url_for("console.event", entry_id=r.id) for r in rows},
    )


def _pretty(obj: Any) -> str:
    # The one codec: amounts are Decimals, shown digit for digit.
    return codec.dumps(obj, indent=True).decode()


def _calls_view(detail: dict[str, Any] | None, reveal: bool) -> tuple[list[dict[str, Any]], int]:
    if detail is None:
        return [], 0
    state = _state()
    calls = detail.get("calls") or []
    ids = [str(c.get("messageId")) for c in calls]
    states = data.call_states(state.redis, ids)
    out = []
    masked_total = 0
    for call, mid in zip(calls, ids, strict=True):
        shown, n = (call, 0) if reveal else mask_personal(call)
        masked_total += n
        out.append(
            {
                "message_id": mid,
                "type": call.get("type"),
                "event": call.get("event"),
                "json": _pretty(shown),
                "state": _state_text(states.get(mid)),
            }
        )
    return out, masked_total


def _state_text(st: dict[str, Any] | None) -> dict[str, str]:
    if st is None:
        return {"name": "unknown", "text": "no record (older than the console's retention)"}
    at = data.fmt_time(st.get("at"))
    name = str(st.get("state"))
    if name == "sent":
        return {"name": name, "text": f"sent in batch {st.get('batch')} at {at}"}
    if name == "retrying":
        return {
            "name": name,
            "text": f"retrying (attempt {st.get('attempt')}, next in {st.get('retry_in')} s): "
            f"{st.get('answer')}",
        }
    if name == "dead":
        why = st.get("answer") or st.get("reason") or ""
        return {"name": name, "text": f"dead-lettered at {at}: {why}"}
    return {"name": name, "text": f"waiting in the outbox since {at}"}


def _detail_context(entry: data.Entry, reveal: bool) -> dict[str, Any]:
    state = _state()
    detail = (
        data.event_detail(state.redis, entry.source, entry.event_id) if entry.event_id else None
    )
    # A webhook the event store took has its payload in what the worker recorded
    # (bridge.console.record); any other carries it in its log entry.
    body = entry.body or str((detail or {}).get("payload") or "").encode()
    payload_text = body.decode(errors="replace")
    masked = 0
    try:
        parsed = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        parsed = None
    if parsed is not None:
        shown, masked = (parsed, 0) if reveal else mask_personal(parsed)
        payload_text = _pretty(shown)
    calls, masked_calls = _calls_view(detail, reveal)
    dead = _state_text(detail["dead"]) if detail and detail.get("dead") else None
    return {
        "entry": entry,
        "payload": payload_text,
        "masked": masked + masked_calls,
        "calls": calls,
        "dead": dead,
        "dlq_id": (detail or {}).get("dead", {}).get("dlq") if detail else None,
        "mapped": detail is not None,
        "reveal": reveal,
        "time": data.fmt_time(entry.t),
    }


@bp.get("/events/<entry_id>")
def event(entry_id: str) -> str:
    entry = data.entry(_state().redis, entry_id) if _valid_id(entry_id) else None
    if entry is None:
        abort(404)
    context = _detail_context(entry, request.args.get("reveal") == "1")
    return render_template("console/event.html", page="events", **context)


@bp.get("/api/events/<entry_id>")
def event_api(entry_id: str) -> Response:
    """The delivery state of each call of an event (the detail page refreshes it)."""
    entry = data.entry(_state().redis, entry_id) if _valid_id(entry_id) else None
    if entry is None:
        abort(404)
    context = _detail_context(entry, reveal=False)
    return jsonify(
        mapped=context["mapped"],
        calls=[{"message_id": c["message_id"], "state": c["state"]} for c in context["calls"]],
        dead=context["dead"],
    )


def _valid_id(entry_id: str) -> bool:
    return data.valid_id(entry_id)


@bp.get("/dead-letters")
def dead_letters() -> str:
    entries = data.dead_letters(_state().redis)
    rows = [
        {
            "id": d.id,
            "kind": d.kind,
            "reason": d.reason,
            "at": data.fmt_time(d.at),
            "source": d.source or "",
            "event_id": d.event_id or "",
            "calls": len(d.calls),
        }
        for d in entries
    ]
    return render_template("console/dead_letters.html", rows=rows, page="dead")


@bp.get("/dead-letters/<entry_id>")
def dead_letter(entry_id: str) -> str:
    from bridge.delivery.deadletter import DeadLetters

    entry = DeadLetters(_state().redis).get(entry_id)
    if entry is None:
        abort(404)
    reveal = request.args.get("reveal") == "1"
    content: Any
    if entry.kind == "event" and entry.event:
        try:
            content = orjson.loads(entry.event).get("body")
        except (orjson.JSONDecodeError, AttributeError):
            content = entry.event
    else:
        content = entry.calls
    shown, masked = (content, 0) if reveal else mask_personal(content)
    return render_template(
        "console/dead_letter.html",
        d=entry,
        at=data.fmt_time(entry.at),
        content=_pretty(shown) if not isinstance(shown, str) else shown,
        masked=masked,
        reveal=reveal,
        page="dead",
    )


@bp.post("/dead-letters/action")
def dead_letter_action() -> BaseResponse | str:
    """Replay or drop the chosen entries (or all); a confirmation page comes first."""
    from bridge.delivery.deadletter import DeadLetters

    state = _state()
    what = request.form.get("action", "")
    if what not in ("replay", "drop"):
        abort(400)
    store = DeadLetters(state.redis)
    everything = request.form.get("all") == "1"
    ids = store.ids() if everything else request.form.getlist("id")
    ids = [i for i in ids if i][:10000]
    if not ids:
        return redirect(url_for("console.dead_letters"))
    if request.form.get("confirm") != "yes":
        chosen = [d for d in (store.get(i) for i in ids[:200]) if d is not None]
        return render_template(
            "console/confirm.html",
            action=what,
            ids=ids,
            chosen=chosen,
            everything=everything,
            page="dead",
        )
    done = 0
    for entry_id in ids:
        if what == "replay":
            done += store.replay(entry_id) is not None
        else:
            done += store.drop(entry_id)
    past = "replayed" if what == "replay" else "dropped"
    data.action(
        state.redis,
        state.settings.console_retention_age,
        state.settings.console_retention,
        past,
        f"{done} dead letter(s) {past}: {', '.join(ids[:20])}{' …' if len(ids) > 20 else ''}",
    )
    log.info("console_dead_letters", action=what, requested=len(ids), done=done)
    return redirect(url_for("console.dead_letters", done=done, action=past))


@bp.route("/playground", methods=["GET", "POST"])
def playground() -> str:
    """Paste a payload, pick a source: the calls it maps to, nothing delivered."""
    from bridge.mappings.identity import IdentityStore, ReadOnlyIdentityStore

    state = _state()
    sources = [s.name for s in state.catalogue]
    form = {"source": sources[0] if sources else "", "payload": "", "type": ""}
    result: dict[str, Any] = {}
    if request.method == "POST":
        form = {k: request.form.get(k, "") for k in form}
        entry = state.catalogue.get(form["source"])
        try:
            body = orjson.loads(form["payload"])
        except orjson.JSONDecodeError as exc:
            body = None
            result["error"] = f"the payload is not JSON: {exc}"
        if entry is None:
            result["error"] = f"no source {form['source']!r}"
        elif body is not None and not isinstance(body, dict):
            result["error"] = "the payload is not a JSON object"
        elif body is not None:
            facts = entry.provider.facts(body, {})
            kind = form["type"].strip() or facts.type
            if not kind:
                result["error"] = "the payload has no event type: give one"
            elif not entry.mapping.handles(kind):
                result["note"] = f"ignored: no rule takes event type {kind!r}"
            else:
                envelope = Envelope(
                    source=entry.name,
                    id=facts.id or "preview",
                    type=kind,
                    time=facts.time if facts.time is not None else time.time(),
                    received_at=time.time(),
                    body=body,
                )
                try:
                    calls = entry.mapping.evaluate(
                        envelope, ReadOnlyIdentityStore(IdentityStore(state.redis))
                    )
                    result["calls"] = [_pretty(c) for c in calls]
                    if not calls:
                        result["note"] = f"{kind}: handled, no calls (no rule's condition holds)"
                except MappingError as exc:
                    result["error"] = f"mapping error: {exc}"
    return render_template(
        "console/playground.html", form=form, sources=sources, result=result, page="playground"
    )
