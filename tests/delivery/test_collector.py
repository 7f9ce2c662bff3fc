from __future__ import annotations

import gzip
import io
from pathlib import Path

import httpx
import orjson

from bridge.devtools.collector import Collector, describe

BATCH = {
    "batch": [{"type": "track", "event": "E", "userId": "u", "messageId": "m1"}],
    "sentAt": "x",
}


def test_records_prints_and_appends_to_a_file(tmp_path: Path) -> None:
    out = io.StringIO()
    with Collector(file=tmp_path / "calls.jsonl", echo=out) as c:
        body = gzip.compress(orjson.dumps(BATCH))
        r = httpx.post(f"{c.url}/v1/batch", content=body, headers={"Content-Encoding": "gzip"})
        assert r.status_code == 200
        assert c.wait_for_calls(1, timeout=2)
    assert orjson.loads((tmp_path / "calls.jsonl").read_text())["messageId"] == "m1"
    assert "track" in out.getvalue()
    assert "E" in out.getvalue()


def test_http_control_endpoint() -> None:
    with Collector() as c:
        ctl = httpx.post(
            f"{c.url}/control", json={"mode": "fail", "status": 429, "retry_after": 3, "times": 1}
        )
        assert ctl.status_code == 200
        r = httpx.post(f"{c.url}/v1/batch", json=BATCH)
        assert (r.status_code, r.headers["Retry-After"]) == (429, "3")
        assert httpx.post(f"{c.url}/v1/batch", json=BATCH).status_code == 200
        assert httpx.get(f"{c.url}/stats").json()["calls"] == 1
        assert httpx.post(f"{c.url}/control", json={"mode": "bogus"}).status_code == 400


def test_auth_and_limits() -> None:
    with Collector(write_key="k") as c:
        assert httpx.post(f"{c.url}/v1/batch", json=BATCH).status_code == 401
        assert httpx.post(f"{c.url}/v1/batch", json=BATCH, auth=("k", "")).status_code == 200
        big = {"batch": [{"p": "x" * 600_000}]}
        assert httpx.post(f"{c.url}/v1/batch", json=big, auth=("k", "")).status_code == 400


def test_describe() -> None:
    assert describe({"type": "alias", "userId": "u", "previousId": "p"}).startswith("alias")
