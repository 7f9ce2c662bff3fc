"""``generic-hmac``: any HMAC-signed webhook, configured in the mapping's ``signature``.

For the long tail of providers that sign with an HMAC of the body (and perhaps a
timestamp, an id or the URL) and need no code of their own. Paddle Billing::

    provider: generic-hmac
    secrets: ${PADDLE_WEBHOOK_SECRET}
    signature:
      header: Paddle-Signature          # ts=1710498758;h1=<hex>[;h1=<hex>]
      pairs: {separator: ";", signature: h1, timestamp: ts}
      algorithm: sha256
      encoding: hex
      signed: "{timestamp}:{body}"
      timestamp: {unit: s}
      event_id: {body: event_id}
      event_type: {body: event_type}
      event_time: {body: occurred_at}

Square (base64 HMAC-SHA256 of the notification URL followed by the body)::

    signature:
      header: x-square-hmacsha256-signature
      encoding: base64
      signed: "{url}{body}"
      event_id: {body: event_id}
      event_type: {body: type}

``signed`` is a template over ``{timestamp}``, ``{id}`` (the event id from a header),
``{url}`` (the URL the provider posted to: ``options.public_url`` behind a proxy) and
``{body}`` (the raw bytes). An event id read from a header that ``signed`` does not
cover could be changed by a replayer, so intake then also deduplicates on the digest
of what was signed. Lint refuses what cannot be safe: a template without
``{body}``, ``{timestamp}`` without a timestamp to read, no way to find the event id
(deduplication) or type. Every secret in ``secrets`` is tried (rotation); every
signature in the header is compared in constant time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar, Literal

import jmespath
from pydantic import BaseModel, ConfigDict, Field, model_validator

from bridge.errors import MalformedPayload, SignatureError
from bridge.providers.base import (
    EventFacts,
    ProviderBase,
    VerifiedEvent,
    check_tolerance,
    parse_json_object,
    require_secrets,
    signed_digest,
)

_PLACEHOLDER = re.compile(r"\{(timestamp|id|url|body)\}")
_ANY_PLACEHOLDER = re.compile(r"\{([A-Za-z_]+)\}")
_FRACTION = re.compile(r"(\.\d{6})\d+")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Pairs(_Strict):
    """A header of ``key=value`` items (``t=1,v1=abc``), not a bare signature."""

    separator: str = Field(",", min_length=1, description="Between items.")
    signature: str = Field(description="Key of the signature item(s) (`v1`, `h1`).")
    timestamp: str | None = Field(None, description="Key of the timestamp item (`t`, `ts`).")


class Timestamp(_Strict):
    """The signed timestamp: checked against ``options.tolerance``."""

    header: str | None = Field(None, description="Header holding it (else a `pairs` item).")
    unit: Literal["s", "ms"] = Field("s", description="Seconds or milliseconds since 1970.")


class Locator(_Strict):
    """Where a value comes from: a request header, or a JMESPath into the body."""

    header: str | None = None
    body: str | None = None

    @model_validator(mode="after")
    def _one(self) -> Locator:
        if (self.header is None) == (self.body is None):
            raise ValueError("give exactly one of `header` or `body`")
        if self.body is not None:
            try:
                jmespath.compile(self.body)
            except jmespath.exceptions.JMESPathError as exc:
                raise ValueError(f"`body` is not a JMESPath expression: {exc}") from None
        return self


class SignatureConfig(_Strict):
    """The ``signature`` block of a mapping that uses ``provider: generic-hmac``."""

    header: str = Field(min_length=1, description="Header carrying the signature.")
    prefix: str = Field("", description="Literal text before the signature (`sha256=`).")
    pairs: Pairs | None = Field(None, description="The header is `key=value` items.")
    algorithm: Literal["sha1", "sha256", "sha512"] = "sha256"
    encoding: Literal["hex", "base64"] = "hex"
    signed: str = Field(
        "{body}", description="What is signed: template over {timestamp}, {id}, {url} and {body}."
    )
    timestamp: Timestamp | None = Field(None, description="The signed timestamp, if any.")
    event_id: Locator = Field(description="The provider's event id: what intake deduplicates on.")
    event_type: Locator = Field(description="The event type rules match on.")
    event_time: Locator | None = Field(
        None,
        description="When the event happened (Unix seconds or ISO-8601); default: the "
        "signed timestamp, else the time of receipt.",
    )

    @model_validator(mode="after")
    def _safe(self) -> SignatureConfig:
        names = set(_ANY_PLACEHOLDER.findall(self.signed))
        unknown = names - {"timestamp", "id", "url", "body"}
        if unknown:
            raise ValueError(
                f"`signed` names {', '.join(sorted(unknown))}: only "
                "{timestamp}, {id}, {url} and {body} exist"
            )
        if "body" not in names:
            raise ValueError("`signed` must contain {body}: otherwise the body is not verified")
        has_timestamp = self.timestamp is not None and (
            self.timestamp.header is not None or (self.pairs is not None and self.pairs.timestamp)
        )
        if self.timestamp is not None and not has_timestamp:
            raise ValueError("`timestamp` needs a `header`, or `pairs.timestamp`")
        if "timestamp" in names and not has_timestamp:
            raise ValueError("`signed` uses {timestamp} but no `timestamp` is configured")
        if has_timestamp and "timestamp" not in names:
            raise ValueError("a timestamp that is not in `signed` proves nothing: add {timestamp}")
        if "id" in names and self.event_id.header is None:
            raise ValueError("`signed` uses {id}: `event_id` must come from a `header`")
        return self


def _parse_time(value: Any, unit: str = "s") -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) / (1000 if unit == "ms" else 1)
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(_FRACTION.sub(r"\1", value)).timestamp()
        except ValueError:
            return None
    return None


class GenericHmacProvider(ProviderBase):
    """Any HMAC-signed webhook, described by the mapping's ``signature`` block."""

    identifier: ClassVar[str] = "generic-hmac"
    config_model: ClassVar[type[BaseModel] | None] = SignatureConfig

    def __init__(self, config: BaseModel | None = None) -> None:
        if not isinstance(config, SignatureConfig):
            raise TypeError("generic-hmac needs its `signature` configuration")
        self.config = config
        self.signs_url = "{url}" in config.signed  # type: ignore[misc]
        # The body is always signed; a header id only when the template has {id}.
        self.signs_event_id = (  # type: ignore[misc]
            config.event_id.body is not None or "{id}" in config.signed
        )
        self.dedup_on = _describe(config.event_id)  # type: ignore[misc]
        if not self.signs_event_id:
            self.dedup_on += " and the signed content's digest"  # type: ignore[misc]
        self._digest = getattr(hashlib, config.algorithm)
        self._id = jmespath.compile(config.event_id.body) if config.event_id.body else None
        self._type = jmespath.compile(config.event_type.body) if config.event_type.body else None
        when = config.event_time
        self._time = jmespath.compile(when.body) if when is not None and when.body else None

    # --- the header ------------------------------------------------------------------
    def _read(self, headers: Mapping[str, str]) -> tuple[list[bytes], str | None]:
        cfg = self.config
        value = headers.get(cfg.header)
        if not value:
            raise SignatureError(f"missing {cfg.header} header", reason="missing_signature")
        stamp = (
            headers.get(cfg.timestamp.header) if cfg.timestamp and cfg.timestamp.header else None
        )
        texts: list[str] = []
        if cfg.pairs is not None:
            stamps = []
            for item in value.split(cfg.pairs.separator):
                key, sep, found = item.strip().partition("=")
                if not sep:
                    continue
                if key == cfg.pairs.signature:
                    texts.append(found)
                elif key == cfg.pairs.timestamp:
                    stamps.append(found)
            if stamp is None and stamps:
                # More than one: which is signed and which checked would be a guess (the
                # Stripe tolerance bypass); malformed, as for Stripe.
                if len(stamps) > 1:
                    raise SignatureError(
                        f"malformed {cfg.header} header: more than one {cfg.pairs.timestamp}= item",
                        reason="malformed_signature",
                    )
                stamp = stamps[0]
        else:
            texts.append(value.strip())
        signatures = []
        for text in texts:
            if cfg.prefix:
                if not text.startswith(cfg.prefix):
                    continue
                text = text[len(cfg.prefix) :]
            try:
                if cfg.encoding == "hex":
                    signatures.append(bytes.fromhex(text))
                else:
                    signatures.append(base64.b64decode(text, validate=True))
            except (ValueError, binascii.Error):
                continue
        if not signatures:
            raise SignatureError(
                f"malformed {cfg.header} header: no {cfg.encoding} signature",
                reason="malformed_signature",
            )
        return signatures, stamp

    def _message(self, body: bytes, stamp: str, event_id: str, url: str) -> bytes:
        values = {"timestamp": stamp, "id": event_id, "url": url}
        parts = _PLACEHOLDER.split(self.config.signed)
        out = bytearray()
        for i, part in enumerate(parts):
            if i % 2 == 0:
                out += part.encode()
            else:
                out += body if part == "body" else values[part].encode()
        return bytes(out)

    def _mac(self, secret: str, message: bytes) -> bytes:
        return hmac.new(secret.encode(), message, self._digest).digest()

    # --- Provider ----------------------------------------------------------------------
    def verify(
        self,
        body: bytes,
        headers: Mapping[str, str],
        secrets: Sequence[str],
        *,
        tolerance: int,
        now: float,
        url: str = "",
    ) -> VerifiedEvent:
        require_secrets(secrets)
        cfg = self.config
        signatures, stamp = self._read(headers)
        timestamp: float | None = None
        if cfg.timestamp is not None:
            if not stamp or not (stamp.isascii() and stamp.isdigit()) or len(stamp) > 16:
                raise SignatureError("no integer signed timestamp", reason="malformed_signature")
            timestamp = int(stamp) / (1000 if cfg.timestamp.unit == "ms" else 1)
        header_id = headers.get(cfg.event_id.header, "") if cfg.event_id.header else ""
        message = self._message(body, stamp or "", header_id, url)
        for secret in secrets:
            expected = self._mac(secret, message)
            if any(hmac.compare_digest(expected, given) for given in signatures):
                break
        else:
            raise SignatureError("signature matches none of the source's secrets")
        if timestamp is not None:
            check_tolerance(timestamp, tolerance=tolerance, now=now)

        event = parse_json_object(body)
        facts = self.facts(event, headers)
        if not facts.id:
            raise MalformedPayload(f"no event id ({_describe(cfg.event_id)})")
        if not facts.type:
            raise MalformedPayload(f"no event type ({_describe(cfg.event_type)})")
        time = facts.time if facts.time is not None else timestamp if timestamp else now
        # An id the signature does not cover could be changed by a replayer: intake then
        # also deduplicates on what was signed.
        digest = None if self.signs_event_id else signed_digest(message)
        return VerifiedEvent(
            id=facts.id, type=facts.type, time=time, body=event, raw=body, signed_digest=digest
        )

    def sign(
        self,
        body: bytes,
        secret: str,
        *,
        now: float,
        event_id: str | None = None,
        event_type: str | None = None,
        url: str = "",
    ) -> dict[str, str]:
        cfg = self.config
        headers = {"Content-Type": "application/json"}
        stamp = ""
        if cfg.timestamp is not None:
            stamp = str(int(now * 1000) if cfg.timestamp.unit == "ms" else int(now))
            if cfg.timestamp.header:
                headers[cfg.timestamp.header] = stamp
        if cfg.event_id.header:
            event_id = event_id or str(uuid.uuid4())
            headers[cfg.event_id.header] = event_id
        if cfg.event_type.header:
            if not event_type:
                raise SignatureError(f"{cfg.event_type.header} needs the event type")
            headers[cfg.event_type.header] = event_type
        mac = self._mac(secret, self._message(body, stamp, event_id or "", url))
        text = cfg.prefix + (mac.hex() if cfg.encoding == "hex" else base64.b64encode(mac).decode())
        if cfg.pairs is not None:
            items = [f"{cfg.pairs.signature}={text}"]
            if cfg.pairs.timestamp and cfg.timestamp and not cfg.timestamp.header:
                items.insert(0, f"{cfg.pairs.timestamp}={stamp}")
            text = cfg.pairs.separator.join(items)
        headers[cfg.header] = text
        return headers

    def facts(self, body: Any, headers: Mapping[str, str]) -> EventFacts:
        cfg = self.config
        return EventFacts(
            _text(
                headers.get(cfg.event_id.header) if cfg.event_id.header else _search(self._id, body)
            ),
            _text(
                headers.get(cfg.event_type.header)
                if cfg.event_type.header
                else _search(self._type, body)
            ),
            _parse_time(_search(self._time, body)) if self._time is not None else None,
        )


def _search(expr: Any, body: Any) -> Any:
    if expr is None:
        return None
    try:
        return expr.search(body)
    except jmespath.exceptions.JMESPathError:
        return None


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _describe(where: Locator) -> str:
    return f"{where.header} header" if where.header else f"body `{where.body}`"
