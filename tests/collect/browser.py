"""A real headless browser for the analytics.js tests: Debian's ``chromium`` driven by
Playwright (never a downloaded browser), and a static server for the test page."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

#: Where scripts/test installs it (apt-get install chromium chromium-driver).
CHROMIUM = "/usr/bin/chromium"


def chromium_path() -> str:
    path = shutil.which("chromium") or CHROMIUM
    assert Path(path).exists(), "chromium is needed: apt-get install chromium chromium-driver"
    return path


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def static_server(directory: Path) -> Iterator[str]:
    """Serve ``directory`` on 127.0.0.1 (a free port); yields the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
