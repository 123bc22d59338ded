"""``buttress events [--follow]`` against a real ops server on a loopback port."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette

from buttress import Registry, events
from buttress.cli import _events, main
from buttress.cli._events import PAGE, Feed, follow, style_of
from buttress.events import HealthAlert, HedgeLaunched
from buttress.ops import create_app
from buttress.retry import Retry
from buttress.testing import ManualClock
from tests.ops.conftest import OPERATOR, TOKENS, VIEWER
from tests.servers import ops_server, stopped_port


@dataclass
class Served:
    """The server's URL, its registry and its app."""

    url: str
    registry: Registry
    app: Starlette

    def log(self) -> list[dict[str, Any]]:
        """Every event the server keeps, oldest first, read in process."""
        return list(reversed(self.app.state.ops.events.recent(PAGE)))

    def trip(self) -> None:
        """Two failed calls open the payments breaker (closed -> open)."""
        payments = self.registry.get("payments", "breaker")
        for _ in range(2):
            with pytest.raises(ConnectionError):
                payments.call(_refused)


def _refused() -> None:
    raise ConnectionError("refused")


def _app() -> Starlette:
    registry = Registry()
    registry.breaker("payments", minimum_calls=2, window=4, open_for=300)
    return create_app(registry, tokens=TOKENS, state_dir=":memory:", scheduler=None)


@contextlib.contextmanager
def _serving(name: str = "events-cli-server") -> Iterator[Served]:
    app = _app()
    try:
        with ops_server(app, name) as url:
            yield Served(url, app.state.ops.registry, app)
    finally:
        app.state.ops.close()


@pytest.fixture
def served() -> Iterator[Served]:
    """An ops server (uvicorn in a thread) with a closed breaker, payments."""
    with _serving() as served:
        yield served


def _retry_twice() -> None:
    """A retry on a virtual clock (no waiting): retry.scheduled, then retry.exhausted."""
    retry = Retry(on=ConnectionError, attempts=2, clock=ManualClock(start=time.time()), name="api")
    with pytest.raises(ConnectionError):
        retry.call(_refused)


def _alert(old: str, new: str, output: str = "") -> None:
    events.emit(HealthAlert(source="db", time=time.time(), old=old, new=new, output=output))


def _run(served: Served, *extra: str, token: str = VIEWER) -> int:
    return main(["events", "--url", served.url, "--token", token, *extra])


def _stamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def test_events_are_printed_oldest_first_with_their_fields(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    """A real breaker opening, a retry and a health alert: one line each, in the order they
    happened, with the local time, kind, source and the event's own fields."""
    served.trip()
    _retry_twice()
    _alert("pass", "fail", "connection refused")
    log = served.log()
    assert [e["kind"] for e in log] == [
        "breaker.state_changed",
        "retry.scheduled",
        "retry.exhausted",
        "health.alert",
    ]
    assert _run(served, "--no-color") == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4
    for text, event in zip(lines, log, strict=True):
        kind = event["kind"].ljust(len("breaker.state_changed"))  # padded: columns line up
        assert text.startswith(f"{_stamp(event['time'])}  {kind}  {event['source']}  ")
    opened = log[0]
    assert lines[0].endswith(f"old=closed  new=open  reason={json.dumps(opened['reason'])}")
    assert "  api  attempt=1  delay=" in lines[1]
    assert 'error="ConnectionError: refused"' in lines[1]
    assert "attempts=2" in lines[2]
    assert lines[3].endswith('old=pass  new=fail  output="connection refused"')


def test_json_lines_are_the_servers_events(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    """--json: one JSON object per line, the API's events (seq, time, kind, source, fields),
    oldest first."""
    served.trip()
    _alert("pass", "warn")
    assert _run(served, "--json") == 0
    parsed = [json.loads(text) for text in capsys.readouterr().out.splitlines()]
    assert parsed == served.log()
    assert [e["seq"] for e in parsed] == sorted(e["seq"] for e in parsed)
    assert parsed[0]["new"] == "open"
    assert set(parsed[1]) == {"seq", "time", "kind", "source", "old", "new", "output"}


def test_limit_prints_the_newest_oldest_first(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    """--limit N: the N newest events, still oldest first."""
    for new in ("warn", "fail", "pass"):
        _alert("x", new)
    assert _run(served, "--limit", "2", "--json") == 0
    parsed = [json.loads(text) for text in capsys.readouterr().out.splitlines()]
    assert [e["new"] for e in parsed] == ["fail", "pass"]


def test_kind_and_source_filters(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    """--kind takes a kind or a family and repeats; --source takes one name; with --limit the
    newest matching events are found even behind newer ones that do not match."""
    served.trip()
    _retry_twice()
    _alert("pass", "fail")

    def kinds(*extra: str) -> list[str]:
        assert _run(served, "--json", *extra) == 0
        return [json.loads(t)["kind"] for t in capsys.readouterr().out.splitlines()]

    assert kinds("--kind", "breaker") == ["breaker.state_changed"]
    assert kinds("--kind", "retry") == ["retry.scheduled", "retry.exhausted"]
    assert kinds("--kind", "health.alert", "--kind", "retry.exhausted") == [
        "retry.exhausted",
        "health.alert",
    ]
    assert kinds("--kind", "retry.sched") == []  # not a family: a prefix of a kind's name
    assert kinds("--source", "api") == ["retry.scheduled", "retry.exhausted"]
    assert kinds("--source", "db", "--kind", "retry") == []
    assert kinds("--kind", "breaker", "--limit", "1") == ["breaker.state_changed"]


def test_colours_by_severity(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    """Openings and failures red, recoveries green, the rest uncoloured; --no-color and
    NO_COLOR print none."""
    assert style_of({"kind": "breaker.state_changed", "new": "open"}) == "red"
    assert style_of({"kind": "breaker.state_changed", "new": "closed"}) == "green"
    assert style_of({"kind": "health.alert", "new": "fail"}) == "red"
    assert style_of({"kind": "health.alert", "new": "pass"}) == "green"
    assert style_of({"kind": "degradation.changed", "old": "normal", "new": "severe"}) == "red"
    assert style_of({"kind": "degradation.changed", "old": "severe", "new": "minor"}) == "yellow"
    assert style_of({"kind": "degradation.changed", "old": "minor", "new": "normal"}) == "green"
    assert style_of({"kind": "backup.failed"}) == "red"
    assert style_of({"kind": "fleet.restored"}) == "green"
    assert style_of({"kind": "fallback.used"}) == ""
    served.trip()
    _alert("fail", "pass")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FORCE_COLOR", "1")
        assert _run(served) == 0
        out = capsys.readouterr().out
        assert "\x1b[31mbreaker.state_changed\x1b[0m" in out
        assert "\x1b[32mhealth.alert\x1b[0m" in out
        assert _run(served, "--no-color") == 0
        assert "\x1b[" not in capsys.readouterr().out


def test_follow_prints_new_events_until_ctrl_c(
    served: Served, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--follow prints the first page, then each event that comes between two polls (the
    filter still applies) at --interval; Ctrl-C ends it with exit 0 and no traceback."""
    served.trip()
    waits: list[float] = []

    def pause(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 1:
            _alert("pass", "fail", "first")
            served.registry.get("payments", "breaker").reset()
        elif len(waits) == 2:
            _alert("fail", "pass", "second")
        else:
            raise KeyboardInterrupt

    monkeypatch.setattr(_events, "_pause", pause)
    code = _run(served, "--follow", "--interval", "0.25", "--kind", "health", "--no-color")
    captured = capsys.readouterr()
    assert code == 0
    assert waits == [0.25, 0.25, 0.25]
    lines = captured.out.splitlines()
    assert [line.split("  ")[-1] for line in lines] == ["output=first", "output=second"]
    assert captured.err == ""
    log = served.log()
    assert [e["kind"] for e in log].count("breaker.state_changed") == 2  # filtered out


def test_follow_json_lines_and_the_first_page_empty(
    served: Served, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no event yet, --follow --json prints nothing, then the breaker opening as one
    JSON line when it comes."""

    def pause(seconds: float) -> None:
        if served.log():
            raise KeyboardInterrupt
        served.trip()

    monkeypatch.setattr(_events, "_pause", pause)
    assert _run(served, "--follow", "--json") == 0
    parsed = [json.loads(text) for text in capsys.readouterr().out.splitlines()]
    assert parsed == served.log()
    assert [(e["kind"], e["old"], e["new"]) for e in parsed] == [
        ("breaker.state_changed", "closed", "open")
    ]


def test_the_follow_loop_stops_when_told_and_reports_lost_events(served: Served) -> None:
    """The loop itself: it polls after the last seq seen, stops when ``until`` holds, and says
    how many events it lost when more came between two polls than the server keeps."""
    notes: list[str] = []
    shown: list[dict[str, Any]] = []
    feed = Feed(served.url, VIEWER, notes.append)
    served.trip()
    assert [e["kind"] for e in feed.first(10, [], None)] == ["breaker.state_changed"]
    assert feed.last == 1
    polls: list[float] = []

    def pause(seconds: float) -> None:
        polls.append(seconds)
        for hedge in range(PAGE + 7):
            events.emit(HedgeLaunched(source="search", time=time.time(), hedge=hedge))

    follow(feed, shown.append, interval=0.5, pause=pause, until=lambda: len(polls) == 1)
    assert polls == [0.5]
    assert len(shown) == PAGE
    assert [e["hedge"] for e in shown] == list(range(7, PAGE + 7))
    assert feed.last == 1 + PAGE + 7
    assert notes == ["7 event(s) not shown: they came faster than the server keeps them"]


def test_follow_notices_a_restarted_server(served: Served) -> None:
    """A server that restarted numbers its events from 1 again: the follower says so and
    reads the new log from the start instead of waiting for numbers it will not see soon."""
    notes: list[str] = []
    shown: list[dict[str, Any]] = []
    served.trip()
    _alert("pass", "warn")
    feed = Feed(served.url, VIEWER, notes.append)
    assert len(feed.first(10, [], None)) == 2
    with _serving("events-cli-restarted") as again:
        again.trip()  # the new server's event 1

        def pause(seconds: float) -> None:
            feed.base = again.url  # the same address, a new process

        follow(feed, shown.append, interval=1.0, pause=pause, until=lambda: bool(notes))
        assert shown == again.log()
    assert notes == [
        "the server restarted (event 1 follows 2): reading its log from the start",
    ]
    assert feed.last == 1


def test_a_server_that_goes_away_while_following_exits_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server stops between two polls: a message saying the server was lost, exit 2."""
    with contextlib.ExitStack() as stack:
        served = stack.enter_context(_serving())
        served.trip()
        monkeypatch.setattr(_events, "_pause", lambda seconds: stack.close())
        assert _run(served, "--follow", "--no-color") == 2
    captured = capsys.readouterr()
    assert "breaker.state_changed" in captured.out
    assert "buttress events: lost the server while following: cannot reach " in captured.err
    assert f"{served.url}/admin/reliability/events" in captured.err
    assert "Traceback" not in captured.err


def test_an_unreachable_server_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """Nothing listens: the command says it cannot reach the events API; exit 2."""
    dead = f"http://127.0.0.1:{stopped_port()}"
    assert main(["events", "--url", dead, "--token", VIEWER]) == 2
    captured = capsys.readouterr()
    assert f"buttress events: cannot reach {dead}/admin/reliability/events:" in captured.err
    assert captured.out == ""


def test_missing_or_bad_tokens_exit_2(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    """No token or an unknown one: 401 with where the token comes from, exit 2, the token never
    printed; an operator token reads too."""
    assert main(["events", "--url", served.url]) == 2
    err = capsys.readouterr().err
    assert "buttress events: HTTP 401: a bearer token is required" in err
    assert "--token or $BUTTRESS_TOKEN" in err
    bad = "not-a-real-token-0123456789"
    assert _run(served, token=bad) == 2
    captured = capsys.readouterr()
    assert "HTTP 401: the bearer token is not valid" in captured.err
    assert bad not in captured.err + captured.out
    served.trip()
    assert _run(served, "--json", token=OPERATOR) == 0
    assert json.loads(capsys.readouterr().out)["new"] == "open"


def test_url_from_the_configuration_and_token_from_the_environment(
    served: Served,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without --url the command asks server.host:server.port of buttress.toml; the viewer
    token may come from $BUTTRESS_TOKEN."""
    port = served.url.rsplit(":", 1)[1]
    (tmp_path / "buttress.toml").write_text(f'[server]\nhost = "0.0.0.0"\nport = {port}\n')
    monkeypatch.setenv("BUTTRESS_TOKEN", VIEWER)
    served.trip()
    assert main(["events", "--no-color"]) == 0
    captured = capsys.readouterr()
    assert "breaker.state_changed  payments  old=closed  new=open" in captured.out
    assert VIEWER not in captured.out + captured.err


def test_field_values_are_compact_and_unambiguous() -> None:
    """Strings with spaces or quotes are JSON-quoted, numbers short, None null, lists JSON."""
    text = _events.line(
        {
            "seq": 3,
            "time": 0.0,
            "kind": "degradation.changed",
            "source": "degrade",
            "reason": 'db "down"',
            "actor": None,
            "features_off": ["search", "recs"],
            "delay": 0.123456789,
            "size": 12,
            "empty": "",
        }
    ).plain
    assert text.endswith(
        'reason="db \\"down\\""  actor=null  features_off=["search","recs"]  delay=0.123457'
        '  size=12  empty=""'
    )
    assert text.startswith(f"{_stamp(0.0)}  degradation.changed    degrade  ")
    long = _events.line({"time": 0.0, "kind": "concurrency.limit_changed", "source": "s"}).plain
    assert long == f"{_stamp(0.0)}  concurrency.limit_changed  s"  # longer kinds are not cut
