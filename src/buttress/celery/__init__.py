"""Celery integration (the ``celery`` extra): buttress's maintenance jobs as Celery tasks with a
beat schedule, and a task base class that runs the body through a buttress pipeline and keeps
exhausted tasks in the dead letter queue.

>>> from celery import Celery
>>> from buttress.celery import install
>>> app = Celery("shop", broker="memory://")
>>> integration = install(app, state_dir=":memory:")
>>> sorted(app.conf.beat_schedule)[:3]
['buttress.backup', 'buttress.breaker-monitor', 'buttress.cleanup']
>>> app.conf.beat_schedule["buttress.health-monitor"]["schedule"]
60.0
>>> integration.run("backup")["result"]
{'note': 'nothing to do: no BackupManager (pass backups= to buttress.celery.install)'}
>>> integration.close()

``install(app, ...)`` registers the tasks ``buttress.<job>`` for ``JOBS`` (the ops server's
health monitor, breaker monitor and reliability report, plus DLQ processing, cleanup, backups
and restore drills) and their ``beat_schedule`` entries. ``ResilientTask`` is the task base;
``replay_handler(app)`` re-submits dead-lettered tasks. See docs/celery.md.
"""

from __future__ import annotations

from buttress.celery._install import CeleryIntegration, beat_schedule, install
from buttress.celery._jobs import INTERVALS, JOBS
from buttress.celery._replay import replay_handler
from buttress.celery._shared import REPLAY_HEADER
from buttress.celery._task import ResilientTask

__all__ = [
    "INTERVALS",
    "JOBS",
    "REPLAY_HEADER",
    "CeleryIntegration",
    "ResilientTask",
    "beat_schedule",
    "install",
    "replay_handler",
]
