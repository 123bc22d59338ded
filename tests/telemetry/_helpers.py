"""Helpers for the telemetry tests: find promtool, and read an exposition back as samples."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"

Key = tuple[str, frozenset[tuple[str, str]]]


def promtool() -> str:
    """The promtool executable; skips the test without it, fails it under ``CI=true``."""
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is required under CI=true (.ci/run installs Debian's prometheus)")
        pytest.skip("promtool is not installed (Debian package `prometheus`)")
    return path


def run_promtool(*args: str, stdin: bytes | None = None, cwd: Path | None = None) -> str:
    """Run promtool; fail the test with its output unless it exits 0. Returns its output."""
    done = subprocess.run(
        [promtool(), *args], input=stdin, capture_output=True, cwd=cwd, timeout=60, check=False
    )
    output = (done.stdout + done.stderr).decode()
    assert done.returncode == 0, output
    return output


def samples(exposition: bytes) -> dict[Key, float]:
    """Every sample of a text exposition: (sample name, labels) -> value."""
    found: dict[Key, float] = {}
    for family in text_string_to_metric_families(exposition.decode()):
        for sample in family.samples:
            key = (sample.name, frozenset(sample.labels.items()))
            assert key not in found, f"duplicate series {key}"
            found[key] = sample.value
    return found


def value(found: dict[Key, float], metric: str, /, **labels: str) -> float:
    """The value of one sample; KeyError naming it when it is missing."""
    key = (metric, frozenset(labels.items()))
    if key not in found:
        raise KeyError(f"no sample {metric}{labels}")
    return found[key]


def families(exposition: bytes) -> dict[str, tuple[str, frozenset[str]]]:
    """Family name -> (type, label names of its samples)."""
    out: dict[str, tuple[str, frozenset[str]]] = {}
    for family in text_string_to_metric_families(exposition.decode()):
        labels = frozenset(name for s in family.samples for name in s.labels)
        out[family.name] = (family.type, labels)
    return out
