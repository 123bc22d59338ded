"""``buttress serve`` (the ops server from the configuration) and ``buttress token create``.

Starlette and uvicorn (the ``server`` extra) are imported only when ``serve`` runs.
"""

from __future__ import annotations

import enum
import ipaddress
import json
import sys
import time
from typing import TYPE_CHECKING, Annotated

import typer

from buttress.cli._options import ConfigOption, ProfileOption, load_or_exit

if TYPE_CHECKING:
    from buttress.backup import BackupPlan
    from buttress.config._backup import BackupSettings
    from buttress.registry import Registry

__all__ = ["MISSING_SERVER", "serve", "token_create", "token_snippet"]

MISSING_SERVER = "buttress: serve needs the 'server' extra: pip install 'buttress[server]'"


class LogLevel(enum.StrEnum):
    """uvicorn's log levels."""

    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


class TokenRole(enum.StrEnum):
    """What a token may do."""

    viewer = "viewer"
    operator = "operator"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    config: ConfigOption = None,
    host: Annotated[
        str | None, typer.Option(help="address to bind (default: server.host, 127.0.0.1)")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(min=0, max=65535, help="port (default: server.port, 8000; 0: any free one)"),
    ] = None,
    profile: ProfileOption = None,
    log_level: Annotated[LogLevel, typer.Option(help="uvicorn's log level")] = LogLevel.info,
) -> None:
    """Run the ops server (health probes, admin API, metrics, dashboard) from the configuration.

    It also runs the periodic jobs: the health monitor, the breaker monitor and the hourly
    reliability report. It binds 127.0.0.1 unless told otherwise; Ctrl-C stops it gracefully.
    """
    loaded = load_or_exit(config, profile)
    try:
        from buttress.ops import create_app, make_server
    except ImportError:
        typer.echo(MISSING_SERVER, err=True)
        raise typer.Exit(2) from None
    settings = loaded.server
    bind = host if host is not None else settings.host
    number = port if port is not None else settings.port
    flags = loaded.flags.open(  # before the app: its /flags routes serve this store
        state_dir=settings.state_dir, health=loaded.health, registry=loaded.registry
    )
    dlq = None  # [dlq]: its routes and jobs serve this queue (attached before the app)
    if loaded.dlq is not None:
        sinks = [alert.sink() for alert in loaded.alerts]
        dlq = loaded.dlq.open(state_dir=settings.state_dir, registry=loaded.registry, sinks=sinks)
    backups = None  # [backup]: its routes, jobs and metrics serve this plan (attached before)
    if loaded.backup is not None:
        backups = open_backups(loaded.backup, loaded.registry)
    app = create_app(
        loaded.registry,
        health=loaded.health,
        tokens=settings.tokens,
        public_reads=settings.public_reads,
        state_dir=settings.state_dir,
        max_body_bytes=settings.max_body_bytes,
        monitor=loaded.health_monitor(),
        # [fleet]: each periodic job runs on one process of the fleet (a leader lock)
        scheduler=loaded.fleet.scheduler() if loaded.fleet is not None else True,
    )
    if loaded.fleet is not None:  # closed last, once the scheduler has released its lock
        app.state.ops.on_shutdown.insert(0, loaded.fleet.aclose)
    app.state.ops.on_shutdown.append(flags.close)
    if dlq is not None:
        app.state.ops.on_shutdown.append(dlq.close)
    if backups is not None:
        app.state.ops.on_shutdown.append(backups.manager.catalog.close)
    source = str(loaded.path) if loaded.path is not None else "no file (defaults only)"
    typer.echo(f"buttress serve: {source}, profile {loaded.profile}, state in {settings.state_dir}")
    if not settings.tokens:
        refused = "every change" if settings.public_reads else "every request"
        typer.echo(
            f"note: no [[server.tokens]] configured: the admin API refuses {refused} "
            "(create one with `buttress token create --role operator`)",
            err=True,
        )
    if not _is_loopback(bind):
        typer.echo(
            f"warning: listening on {bind}, beyond this machine: put TLS in front of it",
            err=True,
        )
    server = make_server(app, bind, number, log_level=log_level.value, access_log=False)
    try:
        server.run()
    except KeyboardInterrupt:  # uvicorn shut down gracefully, then re-raised the Ctrl-C
        pass


def open_backups(settings: BackupSettings, registry: Registry) -> BackupPlan:
    """The ``[backup]`` plan attached to ``registry``; a key that cannot be read exits 2."""
    from buttress.errors import ConfigError

    try:
        return settings.open(registry=registry)
    except ConfigError as exc:
        typer.echo(f"buttress serve: [backup]: {exc}", err=True)
        raise typer.Exit(2) from None


def token_snippet(name: str, role: str, sha256: str) -> str:
    """The ``[[server.tokens]]`` table for ``buttress.toml``."""
    return (
        "[[server.tokens]]\n"
        f"name = {json.dumps(name)}\n"
        f"role = {json.dumps(role)}\n"
        f"sha256 = {json.dumps(sha256)}\n"
    )


def token_create(
    role: Annotated[TokenRole, typer.Option(help="viewer (reads) or operator (also changes)")],
    name: Annotated[
        str | None,
        typer.Option(help="who uses it, shown in the audit log (default: ROLE-YYYYMMDD)"),
    ] = None,
) -> None:
    """Print a new random token, once, and the configuration table holding its SHA-256."""
    from buttress.config import TokenSettings
    from buttress.errors import ConfigError
    from buttress.ops import generate_token

    token, digest = generate_token()
    name = name if name is not None else f"{role.value}-{time.strftime('%Y%m%d')}"
    try:
        TokenSettings(name, role.value, digest)
    except ConfigError as exc:
        typer.echo(f"buttress token create: {exc}", err=True)
        raise typer.Exit(2) from None
    sys.stdout.write(
        f"Token for {name!r} ({role.value}); it is shown only this once, keep it secret:\n\n"
        f"    {token}\n\n"
        "Add this to buttress.toml (only the hash is stored), then restart `buttress serve`:\n\n"
        f"{token_snippet(name, role.value, digest)}"
    )
