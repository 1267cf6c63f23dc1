"""The worker module the ops tests run: the `workers` package plus the worker registry, the one
line `workers/__init__.py` is meant to gain (see docs/operations.md)."""

from __future__ import annotations

import workers
from broadcast.settings import get_settings
from workers.monitor import add_worker_registry

add_worker_registry(workers.broker, get_settings())
