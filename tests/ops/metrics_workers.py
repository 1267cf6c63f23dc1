"""Worker module for the ops tests with Dramatiq's Prometheus middleware, as
`workers/__init__.py` is meant to call `add_prometheus` (see docs/operations.md)."""

from __future__ import annotations

import workers
from broadcast.settings import get_settings
from workers.monitor import add_prometheus, add_worker_registry

add_worker_registry(workers.broker, get_settings())
add_prometheus(workers.broker, get_settings())
