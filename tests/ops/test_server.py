"""The ops app over a real socket: uvicorn in a thread on 127.0.0.1, a real httpx client."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import httpx
from starlette.applications import Starlette

from buttress.ops import make_server

from .conftest import OP, VIEW


def test_served_by_uvicorn_on_loopback(make_app: Callable[..., Starlette]) -> None:
    """uvicorn serves the probes and the admin API on 127.0.0.1, then stops cleanly."""
    server = make_server(make_app(), port=0, log_level="warning")
    thread = threading.Thread(target=server.run, name="ops-test-server", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert thread.is_alive(), "uvicorn stopped before it started"
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        host, port = server.servers[0].sockets[0].getsockname()[:2]
        assert host == "127.0.0.1"
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            live = client.get("/health/live")
            assert live.status_code == 200
            assert live.headers["content-type"] == "application/health+json"
            assert "server" not in live.headers
            opened = client.post("/admin/reliability/circuit-breakers/db/open", headers=OP)
            assert opened.status_code == 200
            assert opened.json()["after"]["state"] == "forced_open"
            audit = client.get("/admin/reliability/audit", headers=VIEW).json()["entries"]
            assert audit[0]["client"] == "127.0.0.1"
            assert client.get("/admin/reliability/audit").status_code == 401
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert not thread.is_alive()
