"""A check that runs a command: exit status 0 passes, anything else fails."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Unpack

from buttress.errors import ConfigError
from buttress.health._model import Check, CheckResult, Status
from buttress.health.checks._common import (
    CheckOptions,
    common,
    elapsed_ms,
    passwords_in,
    scrub,
    sensitive_values,
)

__all__ = ["command_check"]

_TAIL_BYTES = 8192
_POSIX = os.name == "posix"


def command_check(
    name: str,
    command: str | Sequence[str],
    *,
    shell: bool = False,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    **options: Unpack[CheckOptions],
) -> Check:
    """Run ``command`` (a list of arguments, or a string split like a shell would); exit status 0
    passes, any other fails with the last line of its output (stdout and stderr, redacted).

    ``shell=True`` runs it through the shell (a list is joined). ``cwd`` and ``env`` (added to
    the current environment) are optional. At ``timeout`` the command and its children are
    killed and the check fails. Observed value: the exit status. Defaults: component_type
    "component", measurement "status".
    """
    base = common(name, options, component_type="component", measurement="status")
    if not isinstance(shell, bool):
        raise ConfigError("shell", shell, "must be true or false")
    argv = _arguments(command, shell)
    if cwd is not None and not isinstance(cwd, str | os.PathLike):
        raise ConfigError("cwd", cwd, "must be a directory path")
    if env is not None and not (
        isinstance(env, Mapping)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in env.items())
    ):
        raise ConfigError("env", type(env).__name__, "must be a table of strings")
    line = shlex.join(argv) if not isinstance(command, str) else command
    secrets = (*passwords_in(line), *sensitive_values(env or {}))
    probe = _Command(
        argv=argv,
        shell=shell,
        cwd=os.fspath(cwd) if cwd is not None else None,
        env=dict(env) if env is not None else None,
        timeout=base.timeout,
        shown=scrub(line, secrets),
        secrets=secrets,
    )
    return base.check(probe.run)


def _arguments(command: object, shell: bool) -> tuple[str, ...]:
    if isinstance(command, str):
        try:
            argv = (command,) if shell else tuple(shlex.split(command))
        except ValueError as exc:
            raise ConfigError("command", scrub(command), f"cannot be split: {exc}") from None
    elif isinstance(command, Sequence) and all(isinstance(a, str) for a in command):
        argv = (shlex.join(command),) if shell else tuple(command)
    else:
        raise ConfigError("command", type(command).__name__, "must be a string or a list of them")
    if not argv or not argv[0].strip():
        raise ConfigError("command", "", "must not be empty")
    return argv


@dataclass(frozen=True, slots=True)
class _Command:
    argv: tuple[str, ...]
    shell: bool
    cwd: str | None
    env: dict[str, str] | None
    timeout: float
    shown: str
    secrets: tuple[str, ...]

    async def run(self) -> CheckResult:
        """Start the command, keep the tail of its output, and judge its exit status."""
        start = time.perf_counter()
        details: dict[str, Any] = {"command": self.shown}
        try:
            proc = await self._start()
        except OSError as exc:
            details["duration_ms"] = elapsed_ms(start)
            reason = scrub(exc.strerror or str(exc), self.secrets)
            return CheckResult.failed(f"cannot run {self.shown}: {reason}", details=details)
        finished = False
        try:
            async with asyncio.timeout(self.timeout):
                assert proc.stdout is not None
                tail = await _tail(proc.stdout)
                code = await proc.wait()
                finished = True
        except TimeoutError:
            details["duration_ms"] = elapsed_ms(start)
            message = f"{self.shown}: killed after {self.timeout:g}s"
            return CheckResult.failed(message, details=details)
        finally:
            if not finished:  # timed out, or cancelled by the registry: leave no process behind
                _kill(proc)
                await proc.wait()
        details.update(exit_code=code, duration_ms=elapsed_ms(start))
        last = _last_line(tail)
        if code == 0:
            output = scrub(last or "exit status 0", self.secrets)
            return CheckResult(Status.PASS, output, code, None, details)
        reason = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
        output = f"{reason}: {last}" if last else reason
        return CheckResult(Status.FAIL, scrub(output, self.secrets), code, None, details)

    async def _start(self) -> asyncio.subprocess.Process:
        streams: dict[str, Any] = {
            "stdin": asyncio.subprocess.DEVNULL,
            "stdout": asyncio.subprocess.PIPE,
            "stderr": asyncio.subprocess.STDOUT,
            "cwd": self.cwd,
            "env": {**os.environ, **self.env} if self.env is not None else None,
            # its own process group, so that a timeout kills the children too
            "start_new_session": _POSIX,
        }
        if self.shell:
            return await asyncio.create_subprocess_shell(self.argv[0], **streams)
        return await asyncio.create_subprocess_exec(*self.argv, **streams)


async def _tail(stream: asyncio.StreamReader) -> bytes:
    kept = bytearray()
    while chunk := await stream.read(65536):
        kept += chunk
        if len(kept) > _TAIL_BYTES:
            del kept[:-_TAIL_BYTES]
    return bytes(kept)


def _last_line(output: bytes) -> str:
    lines = [line.strip() for line in output.decode("utf-8", "replace").splitlines()]
    return next((line for line in reversed(lines) if line), "")


def _kill(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if _POSIX:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
