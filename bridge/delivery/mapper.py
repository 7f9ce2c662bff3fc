"""Turn one inbox envelope into Segment calls with the source's mapping file."""

from __future__ import annotations

from typing import Any

from redis import Redis

from bridge import mappings
from bridge.envelope import Envelope
from bridge.errors import UnknownSource
from bridge.mappings import IdentityStore
from bridge.settings import Settings


class Mapper:
    """The mappings loaded once per worker process, plus the identity store they use."""

    def __init__(self, settings: Settings, redis: Redis) -> None:
        self.mappings: dict[str, Any] = dict(
            mappings.load_mappings(settings.mappings_dir, settings.environ)
        )
        self.identity = IdentityStore(redis)

    def map(
        self, envelope: Envelope, identity: IdentityStore | None = None
    ) -> list[dict[str, Any]]:
        """The calls for ``envelope``; raises MappingError or UnknownSource.

        ``identity`` replaces the process's store (a chunk's BufferedIdentityStore)."""
        mapping = self.mappings.get(envelope.source)
        if mapping is None:
            raise UnknownSource(f"no mapping for source {envelope.source!r}")
        calls: list[dict[str, Any]] = mapping.evaluate(envelope, identity or self.identity)
        return calls
