"""Small inline SVG charts for the HTML reliability report: no script, no external asset.

``availability_chart(checks)``: one bar per health check, its length the availability, green at
99.9 % and above, amber from 99 %, red below. ``states_chart(breakers)``: one stacked bar per
breaker, the share of the period spent in each state, with a legend. Every mark has a
``<title>`` (the browser's tooltip) with the exact numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from html import escape
from typing import Any

__all__ = ["STATE_COLORS", "availability_chart", "states_chart"]

STATE_COLORS = {
    "closed": "#2f9e44",
    "half_open": "#f08c00",
    "open": "#e03131",
    "forced_open": "#862e9c",
    "disabled": "#868e96",
}
_OTHER = "#adb5bd"
_TRACK = "#eef1f4"
_LABEL_W, _BAR_W, _VALUE_W, _ROW_H, _BAR_H = 190, 420, 120, 22, 14
_WIDTH = _LABEL_W + _BAR_W + _VALUE_W


def _svg(height: int, label: str, body: Iterable[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {_WIDTH} {height}" '
        f'width="{_WIDTH}" height="{height}" role="img" aria-label="{escape(label)}" '
        'font-size="12">' + "".join(body) + "</svg>"
    )


def _label(text: str, y: float) -> str:
    shown = text if len(text) <= 28 else text[:27] + "\u2026"
    return (
        f'<text x="{_LABEL_W - 8}" y="{y:.1f}" text-anchor="end" dominant-baseline="middle">'
        f"<title>{escape(text)}</title>{escape(shown)}</text>"
    )


def _grade(availability: float) -> str:
    if availability >= 0.999:
        return STATE_COLORS["closed"]
    return STATE_COLORS["half_open"] if availability >= 0.99 else STATE_COLORS["open"]


def availability_chart(checks: Iterable[Mapping[str, Any]]) -> str:
    """Bars of each check's ``availability`` (0..1, or None: no sample yet); "" for no checks."""
    rows = list(checks)
    if not rows:
        return ""
    parts: list[str] = []
    for index, check in enumerate(rows):
        y = index * _ROW_H
        mid = y + _ROW_H / 2
        name = str(check["name"])
        value = check.get("availability")
        parts.append(_label(name, mid))
        top = mid - _BAR_H / 2
        parts.append(
            f'<rect x="{_LABEL_W}" y="{top:.1f}" width="{_BAR_W}" height="{_BAR_H}" '
            f'fill="{_TRACK}" rx="2"/>'
        )
        if isinstance(value, int | float):
            width = max(0.0, min(1.0, float(value))) * _BAR_W
            tip = f"{name}: {value * 100:.3f}% of {check.get('samples', 0)} results did not fail"
            parts.append(
                f'<rect x="{_LABEL_W}" y="{top:.1f}" width="{width:.1f}" height="{_BAR_H}" '
                f'fill="{_grade(float(value))}" rx="2"><title>{escape(tip)}</title></rect>'
            )
            shown = f"{value * 100:.2f}%"
        else:
            shown = "n/a"
        parts.append(
            f'<text x="{_LABEL_W + _BAR_W + 8}" y="{mid:.1f}" dominant-baseline="middle">'
            f"{shown}</text>"
        )
    return _svg(len(rows) * _ROW_H, "availability per health check", parts)


def states_chart(breakers: Iterable[Mapping[str, Any]]) -> str:
    """Stacked bars of each breaker's ``time_in_state`` (state -> seconds); "" for none."""
    rows = list(breakers)
    if not rows:
        return ""
    order = [*STATE_COLORS]
    seen = {state for b in rows for state in b["time_in_state"]}
    states = [s for s in order if s in seen] + sorted(seen - set(order))
    legend_h = 24
    parts: list[str] = []
    x = float(_LABEL_W)
    for state in states:
        color = STATE_COLORS.get(state, _OTHER)
        parts.append(f'<rect x="{x:.1f}" y="6" width="12" height="12" fill="{color}" rx="2"/>')
        parts.append(f'<text x="{x + 16:.1f}" y="12" dominant-baseline="middle">{state}</text>')
        x += 24 + 7.2 * len(state)
    for index, breaker in enumerate(rows):
        y = legend_h + index * _ROW_H
        mid = y + _ROW_H / 2
        top = mid - _BAR_H / 2
        name = str(breaker["name"])
        spent: Mapping[str, float] = breaker["time_in_state"]
        total = sum(spent.values())
        parts.append(_label(name, mid))
        parts.append(
            f'<rect x="{_LABEL_W}" y="{top:.1f}" width="{_BAR_W}" height="{_BAR_H}" '
            f'fill="{_TRACK}" rx="2"/>'
        )
        x = float(_LABEL_W)
        for state in states:
            seconds = spent.get(state, 0.0)
            if seconds <= 0 or total <= 0:
                continue
            share = seconds / total
            width = share * _BAR_W
            tip = f"{name}: {state} {seconds:g} s ({share * 100:.1f}%)"
            parts.append(
                f'<rect x="{x:.1f}" y="{top:.1f}" width="{width:.1f}" height="{_BAR_H}" '
                f'fill="{STATE_COLORS.get(state, _OTHER)}"><title>{escape(tip)}</title></rect>'
            )
            x += width
        closed = spent.get("closed", 0.0) / total if total > 0 else 0.0
        parts.append(
            f'<text x="{_LABEL_W + _BAR_W + 8}" y="{mid:.1f}" dominant-baseline="middle">'
            f"{closed * 100:.1f}% closed</text>"
        )
    return _svg(legend_h + len(rows) * _ROW_H, "time in each state per circuit breaker", parts)
