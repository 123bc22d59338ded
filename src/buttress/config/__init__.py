"""Configuration: ``buttress.toml``, ``${VAR}`` interpolation, ``BUTTRESS_*`` overrides, profiles.

``load_config()`` reads the file, applies the active profile's defaults and the environment,
validates everything at once and builds what it declares: a ``Registry`` of policies and
pipelines, a ``HealthRegistry`` of checks, and the server, monitor and alert settings. A bad file
raises ``ConfigFileError`` listing every problem with its path. See ``docs/configuration.md``.

>>> config = load_config(environ={})   # no file: defaults only
>>> config.profile, config.server.port
('production', 8000)
"""

from __future__ import annotations

from buttress.config._errors import ConfigFileError
from buttress.config._fleet import Fleet, FleetSettings
from buttress.config._load import Config, load_config
from buttress.config._profiles import DEFAULT_PROFILE, PROFILES, Profile
from buttress.config._settings import AlertSettings, MonitorSettings, ServerSettings, TokenSettings

__all__ = [
    "DEFAULT_PROFILE",
    "PROFILES",
    "AlertSettings",
    "Config",
    "ConfigFileError",
    "Fleet",
    "FleetSettings",
    "MonitorSettings",
    "Profile",
    "ServerSettings",
    "TokenSettings",
    "load_config",
]
