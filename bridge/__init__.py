"""bridge: provider webhooks in, Segment-spec calls out — verified, deduplicated, durable.

The public surface is small: the settings object, the error tree and the version.
Processes are built from it by :func:`bridge.intake.create_app` (the ``web`` process)
and ``rq worker`` (the ``worker`` process); see README.md.
"""

from bridge.errors import BridgeError
from bridge.settings import Settings

__version__ = "0.1.0"

__all__ = ["BridgeError", "Settings", "__version__"]
