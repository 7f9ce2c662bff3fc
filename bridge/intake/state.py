"""What the web app holds for its lifetime, attached as ``app.extensions["bridge"]``."""

from __future__ import annotations

from dataclasses import dataclass

from redis import Redis

from bridge.intake.store import EventStore
from bridge.mappings import Mapping
from bridge.providers import Provider
from bridge.settings import Settings


@dataclass
class IntakeState:
    """Settings, Redis client, mappings and provider instances of one web app."""

    settings: Settings
    redis: Redis
    mappings: dict[str, Mapping]
    providers: dict[str, Provider]
    store: EventStore
