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
    field_validator,
)

from bridge.errors import ConfigError

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
    flush_at: int = Field(250, ge=1, le=5000, validation_alias=_env("BRIDGE_FLUSH_AT"))
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

    # --- operator console (bridge.console; off unless BRIDGE_CONSOLE_TOKEN is set) ----
    #: BRIDGE_CONSOLE_TOKEN: the operator's login token; also turns event recording on.
    console_token: SecretStr | None = Field(None, validation_alias=_env("BRIDGE_CONSOLE_TOKEN"))
    #: BRIDGE_CONSOLE_PORT: serve the console on this port (``bridge console``), not on PORT.
    console_port: int | None = Field(
        None, ge=1, le=65535, validation_alias=_env("BRIDGE_CONSOLE_PORT")
    )
    #: BRIDGE_CONSOLE_RETENTION / _AGE: webhooks the event log keeps, and for how long (s).
    console_retention: int = Field(
        10000, ge=10, le=1_000_000, validation_alias=_env("BRIDGE_CONSOLE_RETENTION")
    )
    console_retention_age: int = Field(
        86400, ge=60, le=30 * 86400, validation_alias=_env("BRIDGE_CONSOLE_RETENTION_AGE")
    )
    #: BRIDGE_CONSOLE_SECURE_COOKIE: the session cookie is ``Secure`` (off in ``bridge dev``).
    console_secure_cookie: bool = Field(
        True, validation_alias=_env("BRIDGE_CONSOLE_SECURE_COOKIE")
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
                problems.append(f"{loc}: {err['msg']} (got {err.get('input')!r})")
            raise ConfigError("invalid configuration", problems) from None

    @property
    def collector_batch_url(self) -> str:
        """Where batches are POSTed: ``{SEGMENT_ENDPOINT}/v1/batch``."""
        return f"{self.segment_endpoint}/v1/batch"
