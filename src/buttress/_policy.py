"""The shape every policy shares: ``call``, ``acall``, use as a decorator, and ``describe``."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar, overload

from buttress._options import options_dict

__all__ = ["Policy"]

P = ParamSpec("P")
T = TypeVar("T")


class Policy:
    """Base of every policy. Subclasses set ``name`` and ``options`` and implement the two calls."""

    __slots__ = ()

    name: str
    options: Any

    def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)`` under this policy."""
        raise NotImplementedError

    async def acall(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Await ``fn(*args, **kwargs)`` under this policy."""
        raise NotImplementedError

    @overload
    def __call__(
        self, fn: Callable[P, Coroutine[Any, Any, T]]
    ) -> Callable[P, Coroutine[Any, Any, T]]: ...

    @overload
    def __call__(self, fn: Callable[P, T]) -> Callable[P, T]: ...

    def __call__(self, fn: Callable[P, Any]) -> Callable[P, Any]:
        """Decorate a sync or async function so that every call runs under this policy."""
        if inspect.iscoroutinefunction(fn):
            acall = self.acall

            @functools.wraps(fn)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                return await acall(fn, *args, **kwargs)

            return async_wrapper

        call = self.call

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
            return call(fn, *args, **kwargs)

        return wrapper

    def describe(self) -> dict[str, Any]:
        """The policy's type, name and options as plain data (for tools and dashboards)."""
        return {
            "policy": type(self).__name__,
            "name": self.name,
            "options": options_dict(self.options),
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"
