"""Connect: connected accounts listed in the mapping's ``options.account.accounts`` are
listed and fetched with the ``Stripe-Account`` header by backfill and reconcile."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from redis import Redis

from bridge import reconcile as rec
from bridge.catalogue import Catalogue
from bridge.delivery.runtime import Runtime
from bridge.devtools.collector import Collector
from bridge.intake.store import EventStore
from bridge.settings import Settings
from bridge.stripe_api import StripeApi
from tests.backfill.conftest import corpus, env
from tests.backfill.test_backfill import drain_all
from tests.backfill.test_cli import run
from tests.conftest import ROOT
from tests.stripe_server import StripeServer

ACCOUNT = "acct_1ConnectedTest"


def connect_mappings(tmp_path: Path) -> Path:
    """The shipped stripe.yaml with one connected account listed (the operator's layer)."""
    text = (ROOT / "mappings" / "stripe.yaml").read_text()
    marker = "  account:\n    from: account\n    action: tag\n"
    assert marker in text
    folder = tmp_path / "mappings"
    folder.mkdir()
    (folder / "stripe.yaml").write_text(
        text.replace(marker, marker + f"    accounts: [{ACCOUNT}]\n")
    )
    return folder


def seed(stripe_api: StripeServer, now: int) -> None:
    stripe_api.add_event(corpus("inv_paid_basil_subscription_create", created=now - 600))
    # Events listed with Stripe-Account carry no `account` member in this server's
    # answer; bridge adds it, as the Connect webhook would carry it.
    stripe_api.add_event(
        corpus("cus_created_with_user_id_derived", created=now - 300), account=ACCOUNT
    )


def test_backfill_lists_the_platform_and_each_connected_account(
    redis: Redis,
    redis_url: str,
    stripe_api: StripeServer,
    runtime: Runtime,
    collector: Collector,
    tmp_path: Path,
    now: int,
) -> None:
    seed(stripe_api, now)
    folder = connect_mappings(tmp_path)
    result = run(
        env(redis_url, stripe_api.url, BRIDGE_MAPPINGS_DIR=str(folder)), "stripe", "--since", "1d"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "backfill stripe done: listed 1, new 1, duplicates 0, ignored 0",
        f"backfill stripe (account {ACCOUNT}) done: listed 1, new 1, duplicates 0, ignored 0",
    ]
    headers = [r.headers.get("Stripe-Account") for r in stripe_api.list_requests()]
    assert headers == [None, ACCOUNT]
    # Mapped with the account: options.account tags it as context.groupId.
    runtime.__dict__.pop("mapper", None)
    runtime.settings = runtime.settings.model_copy(update={"mappings_dir": folder})
    drain_all(runtime)
    by_id = {c["messageId"]: c for c in collector.calls}
    connected = by_id["stripe:evt_corpus_cus_created_uid:customer-identify:0"]
    assert connected["context"]["groupId"] == ACCOUNT
    platform = by_id["stripe:in_1SVC87HOQNg4XnOMdHAlqDva:0"]
    assert "groupId" not in platform["context"]


def test_reconcile_covers_connected_accounts(
    make_settings: Callable[..., Settings],
    stripe_api: StripeServer,
    redis: Redis,
    tmp_path: Path,
    now: int,
) -> None:
    seed(stripe_api, now)
    settings = make_settings(
        BRIDGE_MAPPINGS_DIR=str(connect_mappings(tmp_path)), BRIDGE_RECONCILE_GRACE="0"
    )
    source = Catalogue.from_settings(settings).get("stripe")
    assert source is not None
    assert source.mapping.connect_accounts == (ACCOUNT,)
    api = StripeApi.from_settings(settings, sleep=lambda _: None)
    result = rec.reconcile(api, EventStore(redis, settings.dedup_ttl), source, settings, now=now)
    assert sorted(result.reconciled) == ["evt_corpus_cus_created_uid", "evt_corpus_inv_basil_paid"]
