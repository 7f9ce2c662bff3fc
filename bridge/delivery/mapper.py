"""Turn one inbox envelope into Segment calls with the source's mapping file."""

from __future__ import annotations

from typing import Any

from redis import Redis

from bridge.catalogue import Catalogue
from bridge.envelope import Envelope
from bridge.errors import UnknownSource
from bridge.hydrate import Hydrator
from bridge.log import get_logger
from bridge.mappings import IdentityStore
from bridge.settings import Settings

log = get_logger("bridge.delivery")


class Mapper:
    """The mappings loaded once per worker process, plus the identity store they use.

    Every source's mapping, on or off: an event made durable while its source was on
    is still delivered after the source is switched off."""

    def __init__(self, settings: Settings, redis: Redis) -> None:
        self.catalogue = Catalogue.from_settings(settings)
        log.info("sources", **self.catalogue.summary())
        self.mappings: dict[str, Any] = self.catalogue.mappings()
        self.identity = IdentityStore(redis)
        #: Thin events and enrichment: what is fetched from Stripe before mapping.
        self.hydrator = Hydrator(redis, settings)

    def map(
        self, envelope: Envelope, identity: IdentityStore | None = None
    ) -> list[dict[str, Any]]:
        """The calls for ``envelope``; raises MappingError or UnknownSource.

        ``identity`` replaces the process's store (a chunk's BufferedIdentityStore)."""
        mapping = self.mappings.get(envelope.source)
        if mapping is None:
            raise UnknownSource(f"no mapping for source {envelope.source!r}")
        if self.hydrator.wants(envelope, mapping):
            hydrated = self.hydrator.hydrate(envelope, mapping=mapping)
            if hydrated is None:
                return []  # Stripe unreadable now: waits in bridge:hydrate:pending
            envelope = hydrated
        calls: list[dict[str, Any]] = mapping.evaluate(envelope, identity or self.identity)
        return calls
