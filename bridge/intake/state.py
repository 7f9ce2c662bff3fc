"""What the web app holds for its lifetime, attached as ``app.extensions["bridge"]``."""

from __future__ import annotations

from dataclasses import dataclass

from redis import Redis

from bridge.catalogue import Catalogue
from bridge.console.record import IntakeRecorder
from bridge.intake.store import EventStore
from bridge.mappings import Mapping
from bridge.settings import Settings


@dataclass
class IntakeState:
    """Settings, Redis client, the source catalogue, the event store and the console's
    recorder of one web app."""

    settings: Settings
    redis: Redis
    catalogue: Catalogue
    store: EventStore
    #: The console's log of webhooks (None: BRIDGE_CONSOLE_TOKEN unset, nothing recorded).
    recorder: IntakeRecorder | None = None

    @property
    def mappings(self) -> dict[str, Mapping]:
        """The mappings of the sources that are on (a view of the catalogue)."""
        return {s.name: s.mapping for s in self.catalogue if s.on}
