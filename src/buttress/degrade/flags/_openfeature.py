"""``ButtressProvider``: buttress flags behind the OpenFeature API (``openfeature-sdk``)::

    api.set_provider(ButtressProvider(flags))
    api.get_client().get_boolean_value("new-checkout", False, EvaluationContext("42"))

The evaluation context's attributes are the flag's attributes; its ``targeting_key`` fills the
attribute named ``targeting_key`` (default ``"user"``, the default stickiness) when the
attributes do not set it. A boolean flag answers ``get_boolean_value``; a variant flag answers
the typed getters with the served variant's value (``get_string_value``...), or the caller's
default when the flag is off for the subject. Reasons are OpenFeature's (``STATIC``, ``SPLIT``,
``TARGETING_MATCH``, ``DISABLED``) or buttress's own (``KILLED``, ``DEGRADED``, ``UNHEALTHY``);
an unknown flag is ``FLAG_NOT_FOUND`` and a value of the wrong type ``TYPE_MISMATCH``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar, cast

from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagResolutionDetails, FlagValueType, Reason
from openfeature.provider import AbstractProvider, Metadata

from buttress.degrade.flags._eval import NOT_FOUND, Evaluation
from buttress.degrade.flags._store import FlagStore

__all__ = ["ButtressProvider"]

V = TypeVar("V")
ObjectValue = Sequence[FlagValueType] | Mapping[str, FlagValueType]


class ButtressProvider(AbstractProvider):
    """An OpenFeature provider serving the flags of ``flags`` (a ``FlagStore``); the context's
    targeting key fills the ``targeting_key`` attribute (default ``"user"``)."""

    def __init__(self, flags: FlagStore, *, targeting_key: str = "user") -> None:
        super().__init__()
        self.flags = flags
        self.targeting_key = targeting_key

    def get_metadata(self) -> Metadata:
        """The provider's name, ``buttress``."""
        return Metadata(name="buttress")

    def _evaluate(self, key: str, context: EvaluationContext | None) -> Evaluation:
        attributes: dict[str, object] = {}
        if context is not None:
            attributes.update(context.attributes)
            if context.targeting_key is not None:
                attributes.setdefault(self.targeting_key, context.targeting_key)
        return self.flags.evaluate(key, attributes)

    def _details(self, evaluation: Evaluation, value: V) -> FlagResolutionDetails[V]:
        return FlagResolutionDetails(
            value=value,
            reason=evaluation.reason,
            variant=evaluation.variant,
            flag_metadata={"namespace": self.flags.namespace, "version": self.flags.version},
        )

    @staticmethod
    def _error(default: V, code: ErrorCode, message: str) -> FlagResolutionDetails[V]:
        return FlagResolutionDetails(
            value=default, reason=Reason.ERROR, error_code=code, error_message=message
        )

    def _resolve(
        self, key: str, default: V, context: EvaluationContext | None, wanted: tuple[type, ...]
    ) -> FlagResolutionDetails[V]:
        evaluation = self._evaluate(key, context)
        if evaluation.reason == NOT_FOUND:
            return self._error(default, ErrorCode.FLAG_NOT_FOUND, f"no flag named {key!r}")
        if bool in wanted:
            details: FlagResolutionDetails[Any] = self._details(evaluation, evaluation.enabled)
            if evaluation.variant is None:
                details.variant = "on" if evaluation.enabled else "off"
            return details
        if self.flags.get(key).kind != "variant":
            return self._error(default, ErrorCode.TYPE_MISMATCH, f"{key!r} is a boolean flag")
        if not evaluation.enabled:
            return self._details(evaluation, default)
        value = evaluation.value
        if isinstance(value, bool) or not isinstance(value, wanted):
            kind = type(value).__name__
            return self._error(default, ErrorCode.TYPE_MISMATCH, f"{key!r} serves a {kind}")
        return self._details(evaluation, cast(V, value))

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        """Whether the flag is on for the context."""
        return self._resolve(flag_key, default_value, evaluation_context, (bool,))

    def resolve_string_details(
        self, flag_key: str, default_value: str, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[str]:
        """The served variant's value, a string."""
        return self._resolve(flag_key, default_value, evaluation_context, (str,))

    def resolve_integer_details(
        self, flag_key: str, default_value: int, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[int]:
        """The served variant's value, an integer."""
        return self._resolve(flag_key, default_value, evaluation_context, (int,))

    def resolve_float_details(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        """The served variant's value, a number."""
        return self._resolve(flag_key, default_value, evaluation_context, (int, float))

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: ObjectValue,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[ObjectValue]:
        """The served variant's value, an object or a list."""
        return self._resolve(flag_key, default_value, evaluation_context, (dict, list))
