"""``[degradation]`` in buttress.toml: rules, features, alerts and settings become a manager."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from buttress.config import ConfigFileError, load_config
from buttress.degrade import DegradationLevel, DegradationManager
from buttress.health import LogSink, WebhookSink
from buttress.testing import ManualClock

QUEUE_DEPTH = [0]


def queue_depth() -> int:
    """A load signal named in the test files by dotted path."""
    return QUEUE_DEPTH[0]


FULL = """
[breakers.payments]
minimum_calls = 2
window = 2

[health.checks.web]
kind = "tcp"
host = "127.0.0.1"
port = 1
critical = false

[degradation]
hysteresis = 20
interval = 2
history = 10
features = { recommendations = "moderate", search = "severe" }

[[degradation.rules]]
kind = "breaker"
breaker = "payments"
level = "moderate"

[[degradation.rules]]
kind = "health"
check = "web"
level = "severe"
statuses = ["fail", "unknown"]

[[degradation.rules]]
kind = "load"
name = "queue"
signal = "tests.degrade.test_config.queue_depth"
threshold = 10
level = "minor"

[[degradation.alerts]]
kind = "webhook"
url = "https://hooks.example.com/ops"
"""


def load(tmp_path: Path, text: str, **kwargs):
    path = tmp_path / "buttress.toml"
    path.write_text(text)
    return load_config(path, environ={}, **kwargs)


def manager_of(config) -> DegradationManager:
    [manager] = config.registry.of_kind("degradation")
    return manager


def test_the_table_builds_a_registered_manager(tmp_path: Path) -> None:
    """Settings, rules, features and alert sinks come from the file; the manager uses the
    configuration's clock and is found in its registry."""
    clock = ManualClock()
    config = load(tmp_path, FULL, clock=clock)
    manager = manager_of(config)
    try:
        assert (manager.hysteresis, manager.interval, manager.history_size) == (20, 2, 10)
        assert [rule.kind for rule in manager.rules] == ["breaker", "health", "load"]
        assert manager.features()["search"] is DegradationLevel.SEVERE
        assert [type(s) for s in manager._alerts.sinks] == [WebhookSink]
        assert manager.clock is clock
        assert manager.level is DegradationLevel.SEVERE  # web never ran: unknown
        config.registry.get("payments", "breaker").trip()
        QUEUE_DEPTH[0] = 50
        assert manager.evaluate() is DegradationLevel.SEVERE
        assert {r["name"] for r in manager.status()["rules"] if r["holds"]} == {
            "payments",
            "web",
            "queue",
        }
        assert config.data["degradation"]["hysteresis"] == 20
        assert "[degradation]" in config.to_toml()
    finally:
        manager.close()
        QUEUE_DEPTH[0] = 0


def test_no_table_no_manager_and_health_alerts_by_default(tmp_path: Path) -> None:
    """Without [degradation] nothing is built; without [[degradation.alerts]] the health
    alerts are used."""
    assert load(tmp_path, "").registry.of_kind("degradation") == []
    text = '[[health.alerts]]\nkind = "log"\n\n[degradation]\nfeatures = {a = "minor"}\n'
    manager = manager_of(load(tmp_path, text))
    try:
        assert [type(s) for s in manager._alerts.sinks] == [LogSink]
    finally:
        manager.close()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[degradation]\nhysterisis = 5\n", "degradation.hysterisis: unknown key"),
        ("[degradation]\nhysteresis = -5\n", "degradation.hysteresis: must be a duration"),
        ('[degradation]\nfeatures = {a = "sometimes"}\n', "degradation.features.a"),
        ("[degradation]\nfeatures = 3\n", "degradation.features: must be a table"),
        ('[[degradation.rules]]\nkind = "vibes"\n', "degradation.rules[0].kind: must be one of"),
        (
            '[[degradation.rules]]\nkind = "health"\nlevel = "minor"\n',
            "degradation.rules[0].check: is required",
        ),
        (
            '[[degradation.rules]]\nkind = "breaker"\nbreaker = "b"\nlevel = "maintenance"\n',
            "degradation.rules[0].level: must be minor, moderate, severe or critical",
        ),
        (
            '[[degradation.rules]]\nkind = "load"\nname = "q"\nsignal = "nowhere.fn"\n'
            'threshold = 1\nlevel = "minor"\n',
            "degradation.rules[0].signal: cannot import 'nowhere'",
        ),
        (
            '[[degradation.rules]]\nkind = "predicate"\nname = "p"\npredicate = "os.sep"\n'
            'level = "minor"\n',
            "degradation.rules[0].predicate: 'os.sep' is not callable",
        ),
        (
            '[[degradation.rules]]\nkind = "breaker"\nbreaker = "b"\nlevel = "minor"\ncolour = 1\n',
            "degradation.rules[0].colour: unknown option of a breaker rule",
        ),
        ('[[degradation.alerts]]\nkind = "pager"\n', "degradation.alerts[0].kind"),
        ("[degradation]\nstore = 5\n", "degradation.store: must be a store URL"),
    ],
)
def test_problems_are_reported_with_their_path(tmp_path: Path, text: str, message: str) -> None:
    """Each mistake is reported with its path in the file, and no manager is registered."""
    with pytest.raises(ConfigFileError) as caught:
        load(tmp_path, text)
    assert any(message in error for error in caught.value.errors), caught.value.errors


def test_a_store_url_keeps_the_override(tmp_path: Path) -> None:
    """``store`` (a SQLite file here) keeps an override for the next process."""
    db = tmp_path / "state.db"
    text = f'[degradation]\nstore = "sqlite:///{db}"\n'
    first = manager_of(load(tmp_path, text))
    first.set_level("minor", reason="maintenance window", actor="ops")
    second = manager_of(load(tmp_path, text))
    try:
        assert second.level is DegradationLevel.MINOR
    finally:
        for manager in (first, second):
            manager.close()
            assert manager.store is not None
            manager.store.close()


def test_the_documented_table_loads(tmp_path: Path) -> None:
    """The ```toml block of docs/degradation.md is a valid buttress.toml under every profile."""
    doc = Path(__file__).resolve().parents[2] / "docs" / "degradation.md"
    [block] = re.findall(r"```toml\n(.*?)```", doc.read_text(), re.S)
    for profile in ("production", "development", "testing"):
        manager = manager_of(load(tmp_path, block, profile=profile))
        try:
            assert [rule.kind for rule in manager.rules] == ["health", "breaker"]
        finally:
            manager.close()


def test_environment_overrides_apply(tmp_path: Path) -> None:
    """``BUTTRESS_DEGRADATION__HYSTERESIS`` overrides the file, like any other setting."""
    path = tmp_path / "buttress.toml"
    path.write_text("[degradation]\nhysteresis = 60\n")
    config = load_config(path, environ={"BUTTRESS_DEGRADATION__HYSTERESIS": "7"})
    manager = manager_of(config)
    try:
        assert manager.hysteresis == 7
    finally:
        manager.close()
