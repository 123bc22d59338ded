"""`Config.masked()` and `to_toml()`: the effective configuration without a secret in it."""

from __future__ import annotations

import json
import tomllib

from hypothesis import given
from hypothesis import strategies as st

from buttress._redact import redact
from buttress.config._toml import dumps

DIGEST = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
SECRETS = ("s3cr3t-pg-pass", DIGEST, "whk-pass-771", "bearer-tok-55aa", "env-pass-x9z")

FILE = f"""
[server]
[[server.tokens]]
name = "ops"
role = "operator"
sha256 = "{DIGEST}"

[health.checks.db]
kind = "postgres"
dsn = "postgresql://app:s3cr3t-pg-pass@db.internal:5432/app"

[health.checks.api]
kind = "http"
url = "https://api.internal/health"
headers = {{Authorization = "Bearer bearer-tok-55aa"}}

[health.checks.cache]
kind = "redis"
url = "redis://:${{REDIS_PASSWORD}}@cache:6379/0"

[[health.alerts]]
kind = "webhook"
url = "https://hook:whk-pass-771@hooks.example.com/alerts"
"""


def test_masked_configuration_hides_every_secret(load) -> None:
    """Passwords in URLs, tokens, digests, auth headers and secret variables are masked."""
    config = load(FILE, env={"REDIS_PASSWORD": "env-pass-x9z"})
    raw = json.dumps(config.data)
    assert all(secret in raw for secret in SECRETS)  # the real values are kept for use
    shown = json.dumps(config.masked()) + config.to_toml()
    for secret in SECRETS:
        assert secret not in shown
    masked = config.masked()
    assert masked["server"]["tokens"][0] == {"name": "ops", "role": "operator", "sha256": "***"}
    assert masked["health"]["checks"]["db"]["dsn"] == "postgresql://app:***@db.internal:5432/app"
    assert masked["health"]["checks"]["api"]["headers"] == {"Authorization": "***"}


def test_secrets_are_registered_for_redaction(load) -> None:
    """Secret values from the configuration are masked by redact() everywhere afterwards."""
    load(FILE, env={"REDIS_PASSWORD": "env-pass-x9z"})
    assert redact("connect failed with env-pass-x9z") == "connect failed with ***"


def test_toml_output_reads_back_as_the_masked_data(load) -> None:
    """to_toml() is valid TOML equal to masked()."""
    config = load(
        FILE + '[retries.r]\non = "ConnectionError"\n[pipelines.p]\npolicies = ["retry.r"]\n',
        env={"REDIS_PASSWORD": "env-pass-x9z"},
    )
    assert tomllib.loads(config.to_toml()) == config.masked()


keys = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8)
scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=8,
)


@given(st.dictionaries(keys, values, max_size=4))
def test_toml_writer_round_trips(data: dict[str, object]) -> None:
    """Whatever plain data it gets, dumps() writes TOML that tomllib reads back equal."""
    assert tomllib.loads(dumps(data)) == data
