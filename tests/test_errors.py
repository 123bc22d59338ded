"""The exception tree: errors that carry their own fields survive a round trip."""

from __future__ import annotations

import pickle

from buttress.errors import AlreadyRunningError, ConfigError


def test_errors_with_their_own_arguments_survive_pickling() -> None:
    """ConfigError and AlreadyRunningError come back from pickle with their fields."""
    error = pickle.loads(pickle.dumps(ConfigError("attempts", 0, "must be >= 1")))
    assert (error.field, error.value, error.expected) == ("attempts", 0, "must be >= 1")
    assert str(error) == "attempts: must be >= 1, got 0"
    held = pickle.loads(pickle.dumps(AlreadyRunningError("nightly", None, "/tmp/x.lock")))
    assert (held.name, held.path) == ("nightly", "/tmp/x.lock")
