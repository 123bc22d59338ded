"""``buttress flags``: list, inspect and change feature flags in the configured store.

The commands open the store of ``[flags]`` in ``buttress.toml`` (default: ``flags.db`` in the
server's ``state_dir``) directly, without the ops server. Every change is audited with
``--actor`` (default ``user@host``) and ``--reason``.
"""

from __future__ import annotations

import getpass
import json
import socket
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from buttress.cli import _render
from buttress.cli._options import ConfigOption, ProfileOption, load_or_exit
from buttress.errors import ConfigError, StoreError

if TYPE_CHECKING:
    from buttress.degrade.flags import FlagChange, FlagRule, FlagStore, Variant

__all__ = ["flags_app", "parse_rule", "parse_variant"]

flags_app = typer.Typer(
    help="List, inspect and change feature flags (the store set in buttress.toml).",
    no_args_is_help=True,
)

ReasonOption = Annotated[str | None, typer.Option(help="why, kept in the audit trail")]
ActorOption = Annotated[
    str | None, typer.Option(help="who, kept in the audit trail (default: user@host)")
]
JsonOption = Annotated[bool, typer.Option("--json", help="print JSON")]
NameArg = Annotated[str, typer.Argument(help="the flag's name")]


def _actor(actor: str | None) -> str:
    if actor:
        return actor
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


@contextmanager
def _opened(config: Path | None, profile: str | None) -> Iterator[FlagStore]:
    """The configured flag store (no background sync); errors print and exit."""
    loaded = load_or_exit(config, profile)
    try:
        flags = loaded.flags.open(state_dir=loaded.server.state_dir, sync=False)
    except ConfigError as exc:
        typer.echo(f"buttress flags: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        if flags.degraded:
            typer.echo(f"buttress flags: the flag store is unreachable ({flags.url})", err=True)
            raise typer.Exit(1)
        yield flags
    except KeyError as exc:
        typer.echo(f"buttress flags: {exc.args[0] if exc.args else exc}", err=True)
        raise typer.Exit(1) from None
    except ConfigError as exc:
        typer.echo(f"buttress flags: {exc}", err=True)
        raise typer.Exit(2) from None
    except StoreError as exc:
        typer.echo(f"buttress flags: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        flags.close()


def _print_change(change: FlagChange, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(change.to_dict(), indent=2) + "\n")
        return
    if not change.id:
        sys.stdout.write(f"{change.flag}: no change\n")
        return
    sys.stdout.write(f"{change.flag}: {change.action} (audit #{change.id})\n")


def _change(
    config: Path | None,
    profile: str | None,
    as_json: bool,
    do: Callable[[FlagStore], FlagChange],
) -> None:
    with _opened(config, profile) as flags:
        change = do(flags)
    _print_change(change, as_json)


def _summary(flag: dict[str, Any]) -> str:
    parts = []
    if flag["rules"]:
        parts.append(f"{len(flag['rules'])} rule(s)")
    if flag["variants"]:
        parts.append("variants " + ",".join(v["name"] for v in flag["variants"]))
    if flag["off_at"]:
        parts.append(f"off at {flag['off_at']}")
    if flag["requires"]:
        parts.append("requires " + ",".join(flag["requires"]))
    return "; ".join(parts)


@flags_app.command("list")
def list_flags(
    config: ConfigOption = None, profile: ProfileOption = None, as_json: JsonOption = False
) -> None:
    """Every flag: status, rollout, rules, variants and dependencies."""
    with _opened(config, profile) as flags:
        rows = flags.views()
    if as_json:
        sys.stdout.write(json.dumps({"flags": rows}, indent=2) + "\n")
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("flag", "status", "rollout", "details", "description"):
        table.add_column(column, overflow="fold")
    for row in rows:
        rollout = f"{row['rollout']}%"
        table.add_row(row["name"], row["status"], rollout, _summary(row), row["description"])
    _render.console(False).print(table)


@flags_app.command("get")
def get_flag(
    name: NameArg,
    config: ConfigOption = None,
    profile: ProfileOption = None,
) -> None:
    """One flag as JSON, with its status."""
    with _opened(config, profile) as flags:
        data = {**flags.get(name).to_dict(), "status": flags.status(name)}
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def parse_rule(text: str) -> FlagRule:
    """``ATTR OP V1,V2 [off] [rollout=N] [variant=NAME]``, e.g. ``tenant in acme,globex``."""
    from buttress.degrade.flags import FlagRule

    words = text.split()
    if len(words) < 3:
        raise ConfigError("rule", text, "must be 'ATTRIBUTE in|not_in|equals VALUE[,VALUE...]'")
    options: dict[str, Any] = {}
    for word in words[3:]:
        key, _, value = word.partition("=")
        if word == "off":
            options["enabled"] = False
        elif key == "rollout" and value.isdigit():
            options["rollout"] = int(value)
        elif key == "variant" and value:
            options["variant"] = value
        else:
            raise ConfigError("rule", text, f"has an unknown option {word!r}")
    return FlagRule(words[0], words[1], words[2].split(","), **options)


def parse_variant(text: str) -> Variant:
    """``NAME[:WEIGHT[:VALUE]]``; VALUE is JSON when it parses, else a string."""
    from buttress.degrade.flags import Variant

    name, _, rest = text.partition(":")
    weight, _, raw = rest.partition(":")
    if weight and not weight.isdigit():
        raise ConfigError("variant", text, "must be NAME[:WEIGHT[:VALUE]], WEIGHT a whole number")
    value: Any = None
    if raw:
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
    return Variant(name, int(weight) if weight else 1, value)


@flags_app.command("set")
def set_flag(
    name: NameArg,
    enabled: Annotated[
        bool | None, typer.Option("--enabled/--disabled", help="switch it on or off")
    ] = None,
    rollout: Annotated[int | None, typer.Option(min=0, max=100, help="percent of subjects")] = None,
    description: Annotated[str | None, typer.Option(help="what the flag is for")] = None,
    stickiness: Annotated[str | None, typer.Option(help="attribute to bucket by")] = None,
    off_at: Annotated[
        str | None, typer.Option(help="degradation level it switches off at ('none': never)")
    ] = None,
    requires: Annotated[
        list[str] | None, typer.Option(help="a health check it needs (repeatable)")
    ] = None,
    rule: Annotated[
        list[str] | None,
        typer.Option(help="'ATTR in|not_in|equals V1,V2 [off] [rollout=N] [variant=V]' (repeat)"),
    ] = None,
    variant: Annotated[
        list[str] | None, typer.Option(help="'NAME[:WEIGHT[:VALUE]]' (repeatable)")
    ] = None,
    config: ConfigOption = None,
    profile: ProfileOption = None,
    reason: ReasonOption = None,
    actor: ActorOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a flag, or change the given fields of an existing one."""
    from buttress.degrade.flags import Flag

    changes: dict[str, Any] = {}
    for key, value in (
        ("enabled", enabled),
        ("rollout", rollout),
        ("description", description),
        ("stickiness", stickiness),
    ):
        if value is not None:
            changes[key] = value
    if off_at is not None:
        changes["off_at"] = None if off_at.lower() == "none" else off_at
    if requires is not None:
        changes["requires"] = tuple(requires)
    who = _actor(actor)
    with _opened(config, profile) as flags:
        if rule is not None:
            changes["rules"] = tuple(parse_rule(text) for text in rule)
        if variant is not None:
            changes["variants"] = tuple(parse_variant(text) for text in variant)
        if name in flags:
            change = flags.update(name, actor=who, reason=reason, **changes)
        else:
            change = flags.create(Flag(name, **changes), actor=who, reason=reason)
    _print_change(change, as_json)


def _simple(action: str, help_text: str) -> None:
    def command(
        name: NameArg,
        config: ConfigOption = None,
        profile: ProfileOption = None,
        reason: ReasonOption = None,
        actor: ActorOption = None,
        as_json: JsonOption = False,
    ) -> None:
        who = _actor(actor)
        _change(
            config,
            profile,
            as_json,
            lambda flags: getattr(flags, action)(name, actor=who, reason=reason),
        )

    command.__doc__ = help_text
    flags_app.command(action)(command)


_simple("enable", "Switch a flag on (a killed flag stays off until revived).")
_simple("disable", "Switch a flag off.")
_simple("kill", "Kill switch: the flag is off for everyone until revived.")
_simple("revive", "Release a flag's kill switch.")
_simple("delete", "Delete a flag.")


@flags_app.command("rollout")
def rollout_flag(
    name: NameArg,
    percent: Annotated[int, typer.Argument(min=0, max=100, help="percent of subjects, 0-100")],
    config: ConfigOption = None,
    profile: ProfileOption = None,
    reason: ReasonOption = None,
    actor: ActorOption = None,
    as_json: JsonOption = False,
) -> None:
    """Serve a flag to PERCENT of subjects (stable buckets: raising it keeps the ones in)."""
    who = _actor(actor)
    _change(
        config,
        profile,
        as_json,
        lambda flags: flags.set_rollout(name, percent, actor=who, reason=reason),
    )


@flags_app.command("export")
def export_flags(
    file: Annotated[Path | None, typer.Argument(help="write here (default: stdout)")] = None,
    config: ConfigOption = None,
    profile: ProfileOption = None,
) -> None:
    """Every flag as JSON (what `import` reads)."""
    with _opened(config, profile) as flags:
        text = json.dumps(flags.export(), indent=2) + "\n"
    if file is None:
        sys.stdout.write(text)
    else:
        file.write_text(text)
        typer.echo(f"exported to {file}", err=True)


@flags_app.command("import")
def import_flags(
    file: Annotated[Path, typer.Argument(help="an export file ('-': stdin)", allow_dash=True)],
    replace: Annotated[
        bool, typer.Option("--replace", help="also delete the flags the file does not list")
    ] = False,
    config: ConfigOption = None,
    profile: ProfileOption = None,
    reason: ReasonOption = None,
    actor: ActorOption = None,
) -> None:
    """Create or replace the flags of an export file; each changed flag is audited."""
    text = sys.stdin.read() if str(file) == "-" else file.read_text()
    who = _actor(actor)
    with _opened(config, profile) as flags:
        changes = flags.import_flags(text, replace=replace, actor=who, reason=reason)
    for change in changes:
        sys.stdout.write(f"{change.flag}: {'deleted' if change.after is None else 'imported'}\n")
    sys.stdout.write(f"{len(changes)} flag(s) changed\n")
