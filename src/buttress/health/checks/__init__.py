"""Built-in health checks: datastores, network endpoints, the machine, the process, breakers.

Each factory returns a ``buttress.health.Check`` whose function returns a ``CheckResult`` with
an IETF observed value and unit (latency in ``ms``, usage in ``percent``, sizes in ``MiB``),
details, and warn/fail thresholds graded per check. Every factory takes the generic options of
``CheckOptions`` (``component_type``, ``measurement``, ``critical``, ``groups``, ``timeout``,
``ttl``). ``make_check(name, kind, options)`` builds one from configuration. Drivers (psycopg,
redis, httpx, psutil) are imported when a check is built or run, never when buttress is.

>>> from buttress.health.checks import disk_check, make_check
>>> disk_check(path="/", warn_above=80).key
'disk:utilization'
>>> api = make_check("api", "tcp", {"host": "api.internal", "port": 443, "timeout": 2})
>>> api.key, api.timeout, sorted(api.groups)
('api:responseTime', 2.0, ['readiness'])
"""

from buttress.health.checks._command import command_check
from buttress.health.checks._common import CheckOptions
from buttress.health.checks._components import breakers_check, custom_check
from buttress.health.checks._config import CHECK_KINDS, check_options, make_check
from buttress.health.checks._datastores import postgres_check, redis_check
from buttress.health.checks._network import http_check, tcp_check
from buttress.health.checks._system import (
    cpu_check,
    disk_check,
    event_loop_check,
    file_handles_check,
    memory_check,
    threads_check,
)

__all__ = [
    "CHECK_KINDS",
    "CheckOptions",
    "breakers_check",
    "check_options",
    "command_check",
    "cpu_check",
    "custom_check",
    "disk_check",
    "event_loop_check",
    "file_handles_check",
    "http_check",
    "make_check",
    "memory_check",
    "postgres_check",
    "redis_check",
    "tcp_check",
    "threads_check",
]
