"""The OpenFeature provider, used through the OpenFeature API (api.set_provider, a client)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason

from buttress.degrade.flags import ButtressProvider, Flag, FlagRule, FlagStore, Variant
from buttress.degrade.flags._eval import in_rollout


@pytest.fixture
def client(flags: FlagStore) -> Iterator[OpenFeatureClient]:
    """An OpenFeature client whose domain is served by a ButtressProvider over ``flags``."""
    flags.create(Flag("checkout", enabled=True, rollout=30))
    flags.create(
        Flag(
            "theme",
            enabled=True,
            variants=[Variant("light", 1, "#fff"), Variant("dark", 1, "#000")],
            rules=[FlagRule("tenant", "in", ["acme"], variant="dark")],
        )
    )
    flags.create(Flag("limits", enabled=True, variants=[Variant("big", 1, {"rps": 100})]))
    flags.create(Flag("retries", enabled=True, variants=[Variant("three", 1, 3)]))
    flags.create(Flag("ratio", enabled=True, variants=[Variant("half", 1, 0.5)]))
    flags.create(Flag("off", variants=[Variant("x")]))
    domain = f"buttress-{uuid.uuid4().hex[:8]}"
    api.set_provider(ButtressProvider(flags), domain)
    yield api.get_client(domain)
    api.clear_providers()


def test_metadata_names_buttress(flags: FlagStore) -> None:
    """The provider calls itself buttress."""
    assert ButtressProvider(flags).get_metadata().name == "buttress"


def test_boolean_follows_the_rollout_by_targeting_key(client: OpenFeatureClient) -> None:
    """get_boolean_value buckets by the context's targeting key, as the store does."""
    for user in map(str, range(50)):
        context = EvaluationContext(user)
        expected = in_rollout("checkout", user, 30)
        assert client.get_boolean_value("checkout", not expected, context) is expected
    details = client.get_boolean_details("checkout", False, EvaluationContext("7"))
    assert details.reason == Reason.SPLIT
    assert details.variant in ("on", "off")


def test_string_value_of_a_variant_flag(client: OpenFeatureClient) -> None:
    """get_string_value serves the variant's value; a targeting rule forces a variant."""
    forced = client.get_string_details("theme", "none", EvaluationContext("1", {"tenant": "acme"}))
    assert (forced.value, forced.variant, forced.reason) == ("#000", "dark", Reason.TARGETING_MATCH)
    plain = client.get_string_value("theme", "none", EvaluationContext("1"))
    assert plain in ("#fff", "#000")


def test_other_types(client: OpenFeatureClient) -> None:
    """Integer, float and object variants are served through their getters."""
    context = EvaluationContext("u")
    assert client.get_integer_value("retries", 0, context) == 3
    assert client.get_float_value("ratio", 0.0, context) == 0.5
    assert client.get_object_value("limits", {}, context) == {"rps": 100}


def test_errors_give_the_default(client: OpenFeatureClient) -> None:
    """Unknown flag: FLAG_NOT_FOUND; wrong type: TYPE_MISMATCH; the default value either way."""
    missing = client.get_boolean_details("nope", True)
    assert (missing.value, missing.error_code) == (True, ErrorCode.FLAG_NOT_FOUND)
    mismatch = client.get_integer_details("theme", 9, EvaluationContext("1"))
    assert (mismatch.value, mismatch.error_code) == (9, ErrorCode.TYPE_MISMATCH)
    boolean = client.get_string_details("checkout", "d", EvaluationContext("1"))
    assert (boolean.value, boolean.error_code) == ("d", ErrorCode.TYPE_MISMATCH)


def test_off_flag_serves_the_default_with_its_reason(
    client: OpenFeatureClient, flags: FlagStore
) -> None:
    """A disabled or killed flag gives the caller's default and says why."""
    off = client.get_string_details("off", "fallback", EvaluationContext("1"))
    assert (off.value, off.reason) == ("fallback", "DISABLED")
    flags.kill("theme")
    killed = client.get_string_details("theme", "plain", EvaluationContext("1"))
    assert (killed.value, killed.reason) == ("plain", "KILLED")
    assert client.get_boolean_value("theme", True, EvaluationContext("1")) is False


def test_attributes_beat_the_targeting_key(flags: FlagStore) -> None:
    """A "user" attribute in the context wins over the targeting key; targeting_key= renames."""
    flags.create(Flag("vip", enabled=True, rollout=0, rules=[FlagRule("user", "in", ["42"])]))
    provider = ButtressProvider(flags)
    context = EvaluationContext("1", {"user": "42"})
    assert provider.resolve_boolean_details("vip", False, context).value is True
    renamed = ButtressProvider(flags, targeting_key="account")
    flags.create(Flag("acct", enabled=True, rollout=0, rules=[FlagRule("account", "in", ["9"])]))
    assert renamed.resolve_boolean_details("acct", False, EvaluationContext("9")).value is True
