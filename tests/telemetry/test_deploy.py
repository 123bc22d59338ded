"""deploy/: the Grafana dashboard and the Prometheus alert rules use only metrics the collector
exposes, and promtool accepts (and unit-tests) the rules."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from buttress.telemetry._prometheus import catalogue
from tests.telemetry._helpers import DEPLOY, run_promtool

DASHBOARD = DEPLOY / "grafana" / "buttress.json"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
SCRAPE_LABELS = {"job", "instance"}  # added by Prometheus to every scraped series

METRIC = re.compile(r"(?<![\w\"$.])(buttress_[A-Za-z0-9_]+)")
SELECTOR = re.compile(r"(buttress_[A-Za-z0-9_]+)\s*\{([^}]*)\}")
MATCHER = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)")
GROUPING = re.compile(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)")


def exposed() -> dict[str, set[str]]:
    """Sample name -> label names, for every family the collector can expose."""
    return {
        family.name + ("_total" if family.type == "counter" else ""): set(family.labels)
        for family in catalogue("buttress", health=True)
    }


def check_expression(expr: str, where: str) -> set[str]:
    """Assert that ``expr`` names only exposed metrics, with their own labels in selectors and
    groupings; returns the metric names it uses."""
    known = exposed()
    names = set(METRIC.findall(expr))
    unknown = names - set(known)
    assert not unknown, f"{where}: metrics the collector does not expose: {sorted(unknown)}"
    for name, matchers in SELECTOR.findall(expr):
        labels = set(MATCHER.findall(matchers))
        extra = labels - known[name] - SCRAPE_LABELS
        assert not extra, f"{where}: {name} has no label(s) {sorted(extra)}"
    usable = set(SCRAPE_LABELS).union(*(known[name] for name in names))
    for group in GROUPING.findall(expr):
        labels = {label.strip() for label in group.split(",") if label.strip()}
        assert labels <= usable, f"{where}: grouping by unknown label(s) {sorted(labels - usable)}"
    return names


def dashboard() -> dict[str, Any]:
    """The dashboard JSON, parsed."""
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def panels(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, including those nested in collapsed rows."""
    found = []
    for panel in data["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def test_dashboard_is_an_importable_grafana_dashboard() -> None:
    """Valid JSON with a recent schema, a Prometheus datasource input used by every panel, and
    a target with an expression on every panel but rows."""
    data = dashboard()
    assert 36 <= data["schemaVersion"] <= 41
    assert data["uid"]
    assert data["title"]
    inputs = {item["name"]: item for item in data["__inputs"]}
    assert inputs["DS_PROMETHEUS"]["pluginId"] == "prometheus"
    ids = [panel["id"] for panel in panels(data)]
    assert len(ids) == len(set(ids))
    for panel in panels(data):
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]
            assert target["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]


def test_dashboard_has_the_operations_panels() -> None:
    """Breaker states, outcomes, rejections, retries, bulkhead saturation and health panels."""
    titles = {panel["title"] for panel in panels(dashboard())}
    assert {
        "Breaker states",
        "Call outcomes per breaker",
        "Rejections",
        "Retry attempts",
        "Retry exhaustion rate",
        "Bulkhead saturation",
        "Health check status",
        "Health check durations",
    } <= titles


def test_dashboard_queries_use_only_exposed_metrics() -> None:
    """Every panel query and template variable names metrics and labels the collector exposes,
    and together they cover breakers, retries, bulkheads and health checks."""
    data = dashboard()
    used: set[str] = set()
    for panel in panels(data):
        for target in panel.get("targets", []):
            used |= check_expression(target["expr"], panel["title"])
    for variable in data["templating"]["list"]:
        used |= check_expression(variable["definition"], f"variable {variable['name']}")
    for needed in (
        "buttress_circuit_breaker_state",
        "buttress_circuit_breaker_calls_total",
        "buttress_retry_attempts_total",
        "buttress_retry_exhausted_total",
        "buttress_bulkhead_active",
        "buttress_health_check_status",
        "buttress_health_check_duration_seconds",
    ):
        assert needed in used, needed


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """promtool parses every panel query (Grafana's variables filled in) as a recording rule."""
    lines = ["groups:", "  - name: dashboard", "    rules:"]
    for panel in panels(dashboard()):
        for target in panel.get("targets", []):
            expr = target["expr"].replace("$__rate_interval", "5m")
            expr = re.sub(r"\$\w+", ".*", expr)
            lines.append(f"      - record: dashboard:panel_{panel['id']}_{target['refId']}")
            lines.append(f"        expr: {json.dumps(expr)}")
    rules = tmp_path / "dashboard.yml"
    rules.write_text("\n".join(lines) + "\n")
    assert "SUCCESS" in run_promtool("check", "rules", str(rules))


def test_alert_rules_use_only_exposed_metrics() -> None:
    """The alert expressions name metrics and labels the collector exposes."""
    text = ALERTS.read_text()
    used = check_expression(text, "alerts.yml")
    assert {
        "buttress_circuit_breaker_state",
        "buttress_health_check_status",
        "buttress_health_check_info",
        "buttress_retry_exhausted_total",
        "buttress_retry_calls_total",
    } <= used


def test_alert_rules_pass_promtool_check_rules() -> None:
    """promtool check rules accepts alerts.yml with its three alerts."""
    output = run_promtool("check", "rules", str(ALERTS))
    assert "SUCCESS: 3 rules found" in output


def test_alert_rules_fire_on_synthetic_series() -> None:
    """promtool test rules: each alert fires on its synthetic series and not on near misses."""
    output = run_promtool("test", "rules", "alerts_test.yml", cwd=ALERTS.parent)
    assert "SUCCESS" in output
    tests = (ALERTS.parent / "alerts_test.yml").read_text()
    for alert in ("ButtressCircuitBreakerOpen", "ButtressReadinessFailing"):
        assert f"alertname: {alert}" in tests
    assert "alertname: ButtressRetryExhaustionHigh" in tests
