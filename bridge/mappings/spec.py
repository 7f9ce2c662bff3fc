"""The one schema of mapping files: it drives loading, lint, the docs and JSON Schema.

The pydantic models below define every key a mapping file may hold (unknown keys are
errors); :data:`CALL_TYPES` says which fields each Segment call type takes and needs.
:func:`json_schema` exports both for editors (``bridge mappings schema``) and
:func:`reference_markdown` renders the key reference that ``docs/mappings.md`` embeds
(a test keeps the two in step).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

#: Call types a rule may emit, with the fields each takes and requires. ``expr`` fields
#: hold JMESPath expressions, ``text`` fields hold literal text.
CALL_TYPES: dict[str, dict[str, Any]] = {
    "track": {
        "required": ["event"],
        "fields": ["event", "properties"],
        "doc": "an action the user took (`event` + `properties`)",
    },
    "identify": {
        "required": [],
        "fields": ["traits"],
        "doc": "who the user is (`traits`)",
    },
    "group": {
        "required": ["groupId"],
        "fields": ["groupId", "traits"],
        "doc": "the account/organisation the user belongs to (`groupId` + `traits`)",
    },
    "page": {
        "required": [],
        "fields": ["name", "properties"],
        "doc": "a web page view (`name` + `properties`)",
    },
    "screen": {
        "required": [],
        "fields": ["name", "properties"],
        "doc": "a mobile screen view (`name` + `properties`)",
    },
    "alias": {
        "required": ["previousId"],
        "fields": ["previousId"],
        "doc": "links a previous id to the userId (`previousId`); needs a userId source",
    },
}

#: Keys of an emitted call that are not type-specific.
COMMON_CALL_KEYS = ("type", "when", "context", "integrations")

Expr = str
ExprOrLiteral = Any


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class TestMode(_Strict):
    """How to treat the provider's test-mode events."""

    when: Expr = Field(
        description="Expression that is true for a test-mode event, e.g. ``livemode == `false` ``."
    )
    action: Literal["tag", "skip", "keep"] = Field(
        "tag",
        description="`tag`: map it and add `context.testMode: true`; `skip`: map "
        "nothing; `keep`: map it like a live event.",
    )


class Account(_Strict):
    """How to treat events from connected accounts (Stripe Connect ``account``)."""

    from_: Expr = Field(
        alias="from",
        description="Expression giving the connected account id (null for the platform).",
    )
    action: Literal["tag", "skip"] = Field(
        "tag",
        description="`tag`: map it, add `context.groupId` = the account id and keep "
        "identities per account; `skip`: map nothing for connected accounts.",
    )
    accounts: tuple[str, ...] = Field(
        (),
        description="Connected accounts (`acct_...`) whose events `bridge backfill` and "
        "reconcile also list and fetch from Stripe's API, with the `Stripe-Account` header "
        "(needs STRIPE_API_KEY; ignored with `action: skip`).",
    )


class Options(_Strict):
    """Source-wide behaviour."""

    tolerance: int = Field(
        300,
        ge=1,
        le=86400,
        description="Seconds a signed timestamp may differ from now (replay window).",
    )
    test_mode: TestMode | None = Field(None, description="Test-mode events; see below.")
    account: Account | None = Field(None, description="Connected-account events; see below.")
    public_url: str | None = Field(
        None,
        pattern=r"^https?://",
        description="The URL the provider posts to, when a proxy in front of bridge "
        "changes it: providers that sign the URL (Square, Twilio, `generic-hmac` with "
        "`{url}`) verify against this instead of the request's own URL.",
    )
    identity_fallback: Literal["anonymous", "error"] = Field(
        "anonymous",
        description="When no userId is found: `anonymous` sends `anonymousId` = "
        "`<source>:<first customer or anonymous_id value>`; `error` makes it a "
        "mapping error (dead letter).",
    )


class Identity(_Strict):
    """Where the user comes from. Each key takes one expression or a list, tried in order."""

    user_id: Expr | list[Expr] | None = Field(
        None, description="Expressions giving our userId; the first non-empty wins."
    )
    customer: Expr | list[Expr] | None = Field(
        None,
        description="Expressions giving the provider's customer ids: learned with the "
        "userId when both are present, looked up in the identity store when not.",
    )
    anonymous_id: Expr | list[Expr] | None = Field(
        None,
        description="Extra fallbacks for `anonymousId` when no customer id is present.",
    )


class Call(_Strict):
    """One Segment call a rule emits. Which fields apply depends on ``type``."""

    type: Literal["track", "identify", "group", "page", "screen", "alias"] = Field(
        description="Segment call type."
    )
    when: Expr | None = Field(None, description="Emit this call only if true.")
    event: str | None = Field(
        None, description="track: the event name, literal text (`Order Completed`)."
    )
    name: str | None = Field(None, description="page/screen: the page name, literal text.")
    properties: dict[str, ExprOrLiteral] | None = Field(
        None, description="track/page/screen: name -> expression (nested maps allowed)."
    )
    traits: dict[str, ExprOrLiteral] | None = Field(
        None, description="identify/group: name -> expression (nested maps allowed)."
    )
    groupId: Expr | None = Field(None, description="group: expression giving the group id.")
    previousId: Expr | None = Field(None, description="alias: expression giving the previous id.")
    context: dict[str, ExprOrLiteral] | None = Field(
        None, description="Extra `context` members (name -> expression)."
    )
    integrations: dict[str, ExprOrLiteral] | None = Field(
        None, description="Segment `integrations` object (name -> expression)."
    )


class Remember(_Strict):
    """A fact to remember for later events: ``<kind>:<key>`` -> value (read with
    ``recall('<kind>', key)``)."""

    key: Expr | list[Expr] = Field(
        description="Expression(s) giving the id(s) the fact is about (nulls are skipped)."
    )
    value: Expr = Field(description="Expression giving the value to remember (null: nothing).")


class Rule(_Strict):
    """Which events a rule takes and what it emits."""

    name: str = Field(
        pattern=r"^[a-z0-9][a-z0-9_.-]{0,47}$",
        description="Unique within the file (lower-case, `-`, `_`, `.`); part of messageId.",
    )
    description: str | None = Field(None, description="Free text for readers.")
    on: str | list[str] = Field(
        description="Event type(s): exact (`invoice.paid`) or glob (`customer.subscription.*`)."
    )
    when: Expr | None = Field(None, description="Expression; the rule applies only if true.")
    identity: Identity | None = Field(
        None, description="Overrides the file's `identity` keys for this rule."
    )
    emit: list[Call] = Field(
        description="Calls to emit, in order. `[]` for a rule that only teaches the identity store."
    )
    once: Expr | list[Expr] | None = Field(
        None,
        description="Count once: expression(s) giving the ids of what the rule counts (a "
        "payment's invoice, intent, session). The first event to claim any of them emits "
        "(messageId `<source>:<first id>:<index>`); another event naming any of "
        "them emits nothing from this rule; the same event mapped again emits again.",
    )
    remember: dict[str, Remember] | None = Field(
        None,
        description="Facts for later events, by kind: `{order: {key: ..., value: ...}}`; "
        "read with `recall('order', id)`. In a rule with `once`, only the event that "
        "wins the claim remembers (its facts describe the call it emitted).",
    )


class HashRule(_Strict):
    """Fields replaced by the SHA-256 of their normalised value before a call leaves."""

    paths: list[str] = Field(
        description="Dotted paths in the call (`traits.email`, `context.traits.email`)."
    )
    normalise: Literal["email", "phone", "none"] = Field(
        "email",
        description="`email`: trimmed and lower-cased; `phone`: digits and a leading `+`; "
        "`none`: as is.",
    )


class ConsentRule(_Strict):
    """What to do with calls whose ``context.consent.categoryPreferences`` deny a category."""

    category: str = Field(description="Consent category (`Advertising`, `Analytics`).")
    action: Literal["drop", "strip"] = Field(
        "drop",
        description="`drop`: the call is not sent; `strip`: the `fields` are removed.",
    )
    fields: list[str] = Field(
        default_factory=list, description="With `strip`: dotted paths removed from the call."
    )


class Privacy(_Strict):
    """Privacy policy applied to every call of the source before it is stored."""

    hash: list[HashRule] = Field(default_factory=list, description="Fields to hash.")
    drop: list[str] = Field(
        default_factory=list, description="Dotted paths removed from every call."
    )
    consent: list[ConsentRule] = Field(
        default_factory=list, description="Consent categories and what a denial does."
    )


class RateLimit(_Strict):
    """Requests allowed per window (0: no limit); over it the answer is 429 + Retry-After."""

    per_ip: int = Field(0, ge=0, description="Requests per window from one client IP.")
    per_key: int = Field(0, ge=0, description="Requests per window with one write key.")
    window: int = Field(60, ge=1, le=86400, description="Window length in seconds.")


class CollectRule(_Strict):
    """A rule over collected calls: drop them, or set fields from expressions."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,47}$", description="Rule name.")
    on: str | list[str] = Field(
        "*", description="Call types (`track`, `page`, ...) or `*`; for track also the "
        "event name (`track:Order Completed`)."
    )
    when: Expr | None = Field(None, description="Expression on the call; applies if true.")
    drop: bool = Field(False, description="Drop matching calls (counted, not an error).")
    set: dict[str, ExprOrLiteral] | None = Field(
        None, description="Dotted path -> expression on the call (null removes the field)."
    )


class Collect(_Strict):
    """First-party collection (`provider: segment`): what `/v1/*` accepts for this source."""

    allowed_origins: str | list[str] = Field(
        default_factory=list,
        description="Browser origins allowed (`https://shop.example`), comma-separated or "
        "a list; `*` allows any. Requests without an Origin (servers) are allowed.",
    )
    allow_localhost: bool = Field(
        False, description="Also allow http(s)://localhost and 127.0.0.1 origins."
    )
    blocked_ips: list[str] = Field(
        default_factory=list, description="Client IP ranges refused (CIDR, `10.0.0.0/8`)."
    )
    forwarded_hops: int = Field(
        0,
        ge=0,
        le=5,
        description="Proxies in front of bridge that append to X-Forwarded-For (Heroku: 1); "
        "the client IP is read that many entries from the right.",
    )
    rate_limit: RateLimit = Field(
        default=RateLimit.model_validate({}), description="See `collect.rate_limit`."
    )
    rules: list[CollectRule] = Field(
        default_factory=list, description="Rules that drop or transform collected calls."
    )
    dedup_ttl: int | None = Field(
        None,
        ge=60,
        description="Seconds a client's messageId is remembered (default: "
        "BRIDGE_DEDUP_TTL); each costs ~100 bytes of Redis, so busy sites may want hours.",
    )


class MappingFile(_Strict):
    """A mapping file: ``mappings/<source>.yaml``."""

    extends: str | None = Field(
        None,
        description="A shipped mapping to build on (`stripe`): this file's keys override "
        "its keys (`options` and `identity` key by key), its `rules` replace the "
        "shipped rules of the same name or are added after them; upgrades of bridge "
        "bring the shipped rules' fixes.",
    )
    drop: list[str] = Field(
        default_factory=list,
        description="With `extends`: names of shipped rules to leave out.",
    )
    provider: str = Field(
        description="Provider plugin that verifies the webhooks: a registered "
        "identifier (`bridge mappings schema` lists them; plugins add more)."
    )
    description: str | None = Field(None, description="Free text for readers.")
    signature: dict[str, Any] | None = Field(
        None,
        description="How the provider signs, for providers configured in the mapping "
        "(`generic-hmac`; see its section).",
    )
    secrets: str | list[str] = Field(
        description="Signing secret(s), usually `${VAR}`; a comma-separated value or a "
        "list holds several during rotation."
    )
    options: Options = Field(default=Options.model_validate({}), description="See `options`.")
    identity: Identity = Field(
        default=Identity.model_validate({}), description="Default identity sources for every rule."
    )
    rules: list[Rule] = Field(
        default_factory=list,
        description="The rules, in order (at least one, except for a `collect` source).",
    )
    collect: Collect | None = Field(
        None, description="First-party collection settings (`provider: segment` only)."
    )
    privacy: Privacy | None = Field(
        None, description="Hash, drop and consent policy for every call of the source."
    )


def json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of a mapping file, with per-call-type requirements."""
    schema = MappingFile.model_json_schema(by_alias=True)
    from bridge.providers import known_providers  # the registry, entry points included

    schema["properties"]["provider"]["enum"] = known_providers()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "bridge mapping file"
    call = schema["$defs"]["Call"]
    every = [k for k in call["properties"] if k not in COMMON_CALL_KEYS]
    rules = []
    for name, spec in CALL_TYPES.items():
        forbidden = [k for k in every if k not in spec["fields"]]
        rules.append(
            {
                "if": {"properties": {"type": {"const": name}}, "required": ["type"]},
                "then": {
                    "required": list(spec["required"]),
                    "not": {"anyOf": [{"required": [k]} for k in forbidden]},
                },
            }
        )
    call["allOf"] = rules
    # A webhook source needs rules; a first-party collection source (`collect`) may have none.
    schema["anyOf"] = [{"required": ["rules"]}, {"required": ["collect"]}]
    return schema


def _fields_table(model: type[BaseModel]) -> list[str]:
    lines = ["| key | required | default | meaning |", "| --- | --- | --- | --- |"]
    for name, field in model.model_fields.items():
        key = field.alias or name
        required = "yes" if field.is_required() else ""
        default = ""
        if not field.is_required() and field.default is not None and field.default_factory is None:
            default = f"`{field.default}`"
        lines.append(f"| `{key}` | {required} | {default} | {field.description or ''} |")
    return lines


def reference_markdown() -> str:
    """The key reference of docs/mappings.md, rendered from the models above."""
    out: list[str] = []
    sections: list[tuple[str, type[BaseModel]]] = [
        ("File", MappingFile),
        ("`options`", Options),
        ("`options.test_mode`", TestMode),
        ("`options.account`", Account),
        ("`identity` (file and rule)", Identity),
        ("`rules[]`", Rule),
        ("`rules[].remember.<kind>`", Remember),
        ("`rules[].emit[]`", Call),
        ("`collect`", Collect),
        ("`collect.rate_limit`", RateLimit),
        ("`collect.rules[]`", CollectRule),
        ("`privacy`", Privacy),
        ("`privacy.hash[]`", HashRule),
        ("`privacy.consent[]`", ConsentRule),
    ]
    for title, model in sections:
        out.append(f"#### {title}")
        out.append("")
        out.extend(_fields_table(model))
        out.append("")
    out.append("#### Call types")
    out.append("")
    out.append("| type | fields | required | what it records |")
    out.append("| --- | --- | --- | --- |")
    for name, spec in CALL_TYPES.items():
        fields = ", ".join(f"`{f}`" for f in spec["fields"])
        required = ", ".join(f"`{f}`" for f in spec["required"]) or "—"
        out.append(f"| `{name}` | {fields} | {required} | {spec['doc']} |")
    out.append("")
    return "\n".join(out)
