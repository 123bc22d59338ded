"""`buttress serve` in a child process, for the tests of what it serves from a configuration.

::

    with ServeProcess(tmp_path) as served:
        health = served.wait_for("/health/dlq")
        listed = served.client.get("/admin/reliability/dlq/messages", headers=viewer)
        _, err = served.stop()
    assert served.returncode == 0, err
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

import httpx

from tests.servers import stopped_port

__all__ = ["ServeProcess"]


class ServeProcess:
    """``python -m buttress serve *args --port PORT`` started in ``cwd`` on a free port, with
    warnings as errors, ``BUTTRESS_CONFIG`` unset and ``env`` added, its output captured as text.

    ``client`` is an httpx client on its address. As a context manager it kills the process
    on exit if it still runs (a test that failed before stopping it).
    """

    def __init__(self, cwd: Path, *args: str, env: Mapping[str, str] | None = None) -> None:
        self.port = stopped_port()  # nothing listens there until the server binds it
        environ = {**os.environ, "PYTHONWARNINGS": "error", **(env or {})}
        environ.pop("BUTTRESS_CONFIG", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "buttress", "serve", *args, "--port", str(self.port)],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environ,
        )
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=5)

    @property
    def returncode(self) -> int | None:
        """The exit status, once it ended."""
        return self.process.returncode

    def wait_for(
        self, path: str, *, headers: Mapping[str, str] | None = None, within: float = 20.0
    ) -> httpx.Response:
        """The first answer to GET ``path``, asked every 50 ms until the server takes the
        connection; fails if the process ends first or nothing answers ``within`` seconds."""
        deadline = time.monotonic() + within
        while True:
            assert self.process.poll() is None, self.process.communicate()
            try:
                return self.client.get(path, headers=headers)
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.05)

    def interrupt(self) -> None:
        """Close the client and send Ctrl-C (SIGINT)."""
        self.client.close()
        self.process.send_signal(signal.SIGINT)

    def ended(self, within: float = 20.0) -> tuple[str, str]:
        """Its stdout and stderr, once it ended (fails after ``within`` seconds)."""
        return self.process.communicate(timeout=within)

    def stop(self) -> tuple[str, str]:
        """Ctrl-C, then its stdout and stderr once it ended."""
        self.interrupt()
        return self.ended()

    def __enter__(self) -> ServeProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.client.close()
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()
