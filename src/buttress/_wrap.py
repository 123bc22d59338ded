"""Decorator wrappers compiled with the wrapped function's own parameters.

A generic ``def wrapper(*args, **kwargs)`` packs a tuple and a dict on every call and unpacks
them again for the inner call; for a policy whose whole hot path costs a few hundred
nanoseconds that is a sixth of it. ``compile_wrapper`` writes the wrapper's source with the
wrapped function's parameter list instead (defaults are the very same objects, passed through),
so the call goes straight through. The source is registered with ``linecache`` so tracebacks
show it.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import linecache
import types
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["GENERIC", "Signature", "compile_wrapper", "signature_of"]

PREFIX = "_bt_"
"""Names in wrapper templates start with this; a function whose parameters do too is wrapped
generically instead."""


class Signature:
    """The pieces of a wrapper's source: ``params`` (the ``def`` line, without defaults),
    ``call`` (the arguments of the inner call), ``args`` and ``kwargs`` (expressions rebuilding
    the generic pair); ``defaults`` and ``kwdefaults`` are set on the compiled function."""

    __slots__ = ("args", "call", "defaults", "kwargs", "kwdefaults", "params")

    def __init__(
        self,
        params: str,
        call: str,
        args: str,
        kwargs: str,
        defaults: tuple[Any, ...] = (),
        kwdefaults: dict[str, Any] | None = None,
    ) -> None:
        self.params, self.call, self.args, self.kwargs = params, call, args, kwargs
        self.defaults, self.kwdefaults = defaults, kwdefaults


def signature_of(fn: Callable[..., Any]) -> Signature | None:
    """``fn``'s parameters as wrapper source, or None when a generic wrapper must do."""
    try:
        sig = inspect.signature(fn, follow_wrapped=False)
    except (TypeError, ValueError):
        return None
    params: list[str] = []
    call: list[str] = []
    positional: list[str] = []
    keywords: list[str] = []
    defaults: list[Any] = []
    kwdefaults: dict[str, Any] = {}
    star = slash = False
    for p in sig.parameters.values():
        if p.name.startswith(PREFIX) or not p.name.isidentifier():
            return None
        if p.default is not inspect.Parameter.empty:
            if p.kind is p.KEYWORD_ONLY:
                kwdefaults[p.name] = p.default
            else:
                defaults.append(p.default)
        if p.kind is p.POSITIONAL_ONLY:
            slash = True
        elif slash:
            params.append("/")
            slash = False
        if p.kind is p.KEYWORD_ONLY and not star:
            params.append("*")
            star = True
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            params.append(p.name)
            call.append(p.name)
            positional.append(p.name)
        elif p.kind is p.VAR_POSITIONAL:
            params.append(f"*{p.name}")
            call.append(f"*{p.name}")
            positional.append(f"*{p.name}")
            star = True
        elif p.kind is p.KEYWORD_ONLY:
            params.append(p.name)
            call.append(f"{p.name}={p.name}")
            keywords.append(f"{p.name!r}: {p.name}")
        else:  # VAR_KEYWORD
            params.append(f"**{p.name}")
            call.append(f"**{p.name}")
            keywords.append(f"**{p.name}")
    if slash:
        params.append("/")
    args = f"({', '.join(positional)},)" if positional else "()"
    kwargs = f"{{{', '.join(keywords)}}}"
    return Signature(
        ", ".join(params), ", ".join(call), args, kwargs, tuple(defaults), kwdefaults or None
    )


GENERIC = Signature("*args, **kwargs", "*args, **kwargs", "args", "kwargs")
"""The parameters of a wrapper that takes anything."""


def compile_wrapper(
    fn: Callable[..., Any], sig: Signature, template: str, names: Mapping[str, Any], label: str
) -> Callable[..., Any]:
    """Compile ``template`` (a ``def _bt_wrapper({params}): ...`` using ``{call}``, ``{args}``
    and ``{kwargs}``) for ``fn``, with ``names`` as its globals."""
    source = template.format(params=sig.params, call=sig.call, args=sig.args, kwargs=sig.kwargs)
    code = _compiled(source, label)
    namespace: dict[str, Any] = {"__builtins__": __builtins__, **names}
    wrapper = types.FunctionType(code, namespace, f"{PREFIX}wrapper", sig.defaults or None)
    wrapper.__kwdefaults__ = sig.kwdefaults
    return wrapper


@functools.lru_cache(maxsize=512)
def _compiled(source: str, label: str) -> types.CodeType:
    """The code object of the wrapper that ``source`` defines; one per distinct source, so
    decorating in a loop does not grow ``linecache``."""
    digest = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()[:12]
    filename = f"<buttress {label} wrapper {digest}>"
    module = compile(source, filename, "exec")
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    (code,) = (c for c in module.co_consts if isinstance(c, types.CodeType))
    return code
