"""``Pipeline``: policies composed outer to inner, itself a policy."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from buttress._policy import Policy
from buttress.errors import ConfigError

__all__ = ["Pipeline"]

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PipelineOptions:
    """A pipeline's only option: its policies, outermost first."""

    policies: tuple[Policy, ...]


class Pipeline(Policy):
    """Runs a call through ``policies``, the first outermost: ``Pipeline(timeout, retry, breaker)``.

    Nested pipelines are flattened. The composition allocates nothing per call beyond the
    arguments: the outer policy calls the next policy's ``call`` with the rest of the chain as
    leading arguments, down to the function itself.
    """

    __slots__ = ("_acall", "_call", "_rest_acalls", "_rest_calls", "name", "options", "policies")

    policies: tuple[Policy, ...]

    def __init__(self, *policies: Policy, name: str = "pipeline") -> None:
        flat: list[Policy] = []
        for index, policy in enumerate(policies):
            if isinstance(policy, Pipeline):
                flat.extend(policy.policies)
            elif isinstance(policy, Policy):
                flat.append(policy)
            else:
                raise ConfigError(f"policies[{index}]", policy, "must be a buttress policy")
        if not flat:
            raise ConfigError("policies", (), "must hold at least one policy")
        self.name = name
        self.policies = tuple(flat)
        self.options = PipelineOptions(self.policies)
        self._call = flat[0].call
        self._acall = flat[0].acall
        self._rest_calls = tuple(p.call for p in flat[1:])
        self._rest_acalls = tuple(p.acall for p in flat[1:])

    def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn`` through every policy, outermost first."""
        call: Any = self._call
        return call(*self._rest_calls, fn, *args, **kwargs)  # type: ignore[no-any-return]

    async def acall(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Await ``fn`` through every policy, outermost first."""
        acall: Any = self._acall
        return await acall(*self._rest_acalls, fn, *args, **kwargs)  # type: ignore[no-any-return]

    def describe(self) -> dict[str, Any]:
        """The pipeline's name and each policy's description, outermost first."""
        return {
            "policy": "Pipeline",
            "name": self.name,
            "policies": [policy.describe() for policy in self.policies],
        }

    def __repr__(self) -> str:
        inner = ", ".join(repr(p) for p in self.policies)
        return f"Pipeline({inner}, name={self.name!r})"
