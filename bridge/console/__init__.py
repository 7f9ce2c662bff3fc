"""The operator console: watch webhooks arrive, see what they became, act on dead letters.

Off unless ``BRIDGE_CONSOLE_TOKEN`` is set. Modules::

    extension   init_app(): records webhooks, mounts the pages at /console
    record      what intake and workers write to Redis (bounded by count and age)
    data        what the pages read back
    views       the blueprint (login, overview, log, detail, dead letters, playground)
    mask        signature values never shown; personal data masked until revealed
    app         the console alone, for a port of its own (``bridge console``)

Importing this package imports nothing else, so workers can use :mod:`record`
without loading the web code.
"""
