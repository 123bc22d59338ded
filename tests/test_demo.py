"""`buttress demo`: the live demo (ops server, flaky upstream, workload) in a process, and the
virtual-time scenario (`--virtual`) in process."""

from __future__ import annotations

import io
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import httpx
import pytest

from buttress.cli import main
from buttress.cli.demo import run_demo


def test_virtual_demo_goes_through_every_phase() -> None:
    """On a virtual clock the 20 s scenario opens the breaker, falls back, retries and recovers."""
    out = io.StringIO()
    summary = run_demo(duration=20, rate=20, virtual=True, out=out)
    text = out.getvalue()
    assert summary.calls >= 200
    assert summary.fallbacks > 0
    assert summary.retries > 0
    assert any("closed -> open" in t for t in summary.transitions)
    assert any("half_open -> closed" in t for t in summary.transitions)
    assert summary.dependency_calls < summary.calls + summary.retries  # the breaker spared calls
    for phase in ("healthy", "failing", "slow", "down"):
        assert f"upstream is now {phase}" in text
    assert "summary:" in text


def test_cli_entry_point_runs_demo(capsys) -> None:
    """`buttress demo --virtual` exits 0 and prints a summary."""
    assert main(["demo", "--duration", "5", "--virtual"]) == 0
    assert "summary:" in capsys.readouterr().out


class _Lines:
    """The lines a process prints, read by a thread so that waiting for one can time out."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        """The first line from now on matching ``pattern``."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no line matching {pattern!r} in:\n{self.text()}"
            try:
                line = self._queue.get(timeout=min(remaining, 0.1))
            except queue.Empty:
                continue
            assert line is not None, f"the process ended first:\n{self.text()}"
            self.lines.append(line)
            found = re.search(pattern, line)
            if found:
                return found

    def text(self) -> str:
        """Every line read so far, after the process has ended (the rest is drained)."""
        self._thread.join(timeout=10)
        while True:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self.lines.append(line)
        return "".join(self.lines)


def _demo(cwd: Path, *argv: str) -> tuple[subprocess.Popen[str], _Lines]:
    """The demo in a process in ``cwd``; its stderr goes to ``cwd / "stderr.txt"``."""
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    with (cwd / "stderr.txt").open("w") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "buttress", "demo", *argv],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env=env,
        )
    assert process.stdout is not None
    return process, _Lines(process.stdout)


def _stop(process: subprocess.Popen[str]) -> None:
    """Kill the process if it still runs; close its output."""
    if process.poll() is None:
        process.kill()
        process.wait(timeout=10)
    assert process.stdout is not None
    process.stdout.close()


@pytest.mark.slow
def test_live_demo_serves_the_ops_endpoints_while_it_runs(tmp_path: Path) -> None:
    """`buttress demo --duration 4 --port 0`: probes, the admin API (public reads) and metrics
    answer while the workload runs; one status line a second; a summary; state in .buttress/."""
    process, lines = _demo(tmp_path, "--duration", "4", "--port", "0", "--phase", "1")
    try:
        url = lines.wait_for(r"dashboard\s+(http://127\.0\.0\.1:\d+)/").group(1)
        lines.wait_for(r"upstream \w+ +calls +\d+ +fresh +\d+ +fallback +\d+ +breaker \w+")
        with httpx.Client(base_url=url, timeout=5) as client:
            ready = client.get("/health/ready")
            breakers = client.get("/admin/reliability/circuit-breakers")
            metrics = client.get("/metrics")
            jobs = client.get("/admin/reliability/jobs")
        process.wait(timeout=30)
        out = lines.text()
    finally:
        _stop(process)
    err = (tmp_path / "stderr.txt").read_text()
    assert ready.status_code in (200, 503)
    assert ready.headers["content-type"] == "application/health+json"
    assert "upstream:responseTime" in ready.json()["checks"]
    assert breakers.status_code == 200
    (upstream,) = breakers.json()["circuit_breakers"]
    assert upstream["name"] == "upstream"
    assert upstream["calls"] > 0
    assert 'buttress_circuit_breaker_state{name="upstream",state="closed"}' in metrics.text
    assert "buttress_retry_attempts_total" in metrics.text
    assert len(jobs.json()["jobs"]) == 3
    assert process.returncode == 0, err
    assert "Traceback" not in err
    assert len(re.findall(r"^ +\d+\.\ds  upstream \w+ +calls", out, re.MULTILINE)) >= 3
    assert "upstream is now errors" in out
    summary = re.search(r"summary: (\d+) calls in ([\d.]+) s, (\d+) fresh answers", out)
    assert summary is not None, out
    assert int(summary.group(1)) >= 40
    assert 3.5 <= float(summary.group(2)) <= 6
    assert int(summary.group(3)) > 0
    assert (tmp_path / ".buttress" / "buttress.db").exists()


@pytest.mark.slow
def test_live_demo_takes_another_port_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    """With the port taken the demo says so and uses a free one; Ctrl-C prints the summary and
    exits 0, without a traceback."""
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        process, lines = _demo(tmp_path, "--port", str(port))
        try:
            lines.wait_for(f"port {port} is not available .*; using \\d+ instead")
            lines.wait_for(r"calls +\d+")
            process.send_signal(signal.SIGINT)
            process.wait(timeout=20)
            out = lines.text()
        finally:
            _stop(process)
    err = (tmp_path / "stderr.txt").read_text()
    assert process.returncode == 0, err
    assert "summary:" in out
    assert "Traceback" not in err
