"""First-party collection: a Segment-compatible API for a site's browsers and servers.

- :mod:`bridge.collect.api` — the ``/v1/*`` blueprint (``init_app`` attaches it);
- :mod:`bridge.collect.site` — a ``provider: segment`` source compiled: write keys,
  origins, IP ranges, rate limits, rules, privacy;
- :mod:`bridge.collect.validate` — the Segment spec checks and sanitising of one call;
- :mod:`bridge.collect.store` — one Lua script: rate limit, dedup, outbox;
- :mod:`bridge.collect.middleware` — server-side page views for Flask and any WSGI app.

Nothing is imported here, so that app code using only the middleware or the Client's
context helpers does not load the web API.
"""
