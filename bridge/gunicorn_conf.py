"""gunicorn settings of the ``web`` process: ``gunicorn -c python:bridge.gunicorn_conf``.

The Procfile, the Dockerfile and ``bridge dev`` all serve the app with this module, so
the setup that is measured (bench/README.md) is the one that runs.

**Slow clients.** With sync workers a request occupies its worker process from the
first byte to the last: two connections trickling a body a byte at a time held both
workers until gunicorn's 30 s timeout, and every webhook behind them waited. Here each
worker is a ``gthread`` worker: connections wait for their first bytes in the worker's
event loop (not a thread), and a request being read holds one of ``threads`` threads,
not the process. A slow client therefore costs one thread; it takes ``workers x
threads`` connections trickling at once to stall intake. A deployment open to hostile
networks should also sit behind a proxy that buffers whole requests before passing them
on (nginx does by default, ``proxy_request_buffering on``), which no number of slow
clients can exhaust; see README, "Operating: under faults".

**Errors gunicorn answers itself** (a request line over ``limit_request_line`` is 414,
headers over the limits 431, a malformed request 400) are written by
``gunicorn.util.write_error`` as HTML, before the app sees anything, and gunicorn has
no setting to change that. :func:`post_fork` replaces that one function in each worker
with one that writes the same status as bridge's JSON error shape,
``{"error": ..., "reason": ...}``. tests/faults/test_intake_gunicorn.py checks it
against the real server, so a gunicorn release that moves the hook fails a test
instead of going back to HTML silently.

Nothing here is read from the environment: gunicorn itself reads ``WEB_CONCURRENCY``
(workers) and ``PORT`` (bind), and command-line flags override this module.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from gunicorn import util  # type: ignore[import-untyped]  # no stubs; one function used

#: Worker class: threads read requests, so a slow client holds a thread, not a process.
worker_class = "gthread"

#: Threads per worker (measured in bench/README.md: more threads than this buys no
#: throughput on 2 cores; each thread is one slow client the worker can absorb).
threads = 8

#: Heroku sends SIGKILL 30 s after SIGTERM: finish in-flight requests within 25 s.
graceful_timeout = 25

#: Parallel gunicorns (tests, benchmarks, several apps on one host) must not share
#: ``~/.gunicorn/gunicorn.ctl``; bridge does not use gunicorn's control socket.
control_socket_disable = True


def _slug(reason: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", reason.lower()).strip("_") or "bad_request"


def write_json_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's ``util.write_error`` with bridge's JSON body instead of HTML.

    A ``Transfer-Encoding`` gunicorn does not implement is its 501; to a webhook
    sender it is a request bridge will not take, so it is answered 400 (bridge
    promises 2xx or 4xx for any input, 503 only when Redis cannot take an event)."""
    if status_int == 501:
        status_int, reason = 400, "Bad Request"
        mesg = mesg or "unsupported transfer coding"
    body = orjson.dumps({"error": mesg or reason, "reason": _slug(reason)})
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1", "replace") + body)


def post_fork(server: Any, worker: Any) -> None:
    """In each worker: gunicorn's own error answers are JSON (see the module doc)."""
    util.write_error = write_json_error
