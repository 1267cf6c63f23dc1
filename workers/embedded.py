"""How the CLI reaches the workers: queue to Redis for worker processes, or (no Redis) run the
very same actors in this process with the stub broker and an in-process Dramatiq worker."""

from __future__ import annotations

import time
from collections.abc import Callable

import dramatiq

from broadcast.delivery import recovery
from broadcast.delivery.dispatch import QUEUES, Dispatcher
from broadcast.runtime import Runtime
from broadcast.store.tables import utcnow
from workers.app import WorkerApp
from workers.broker import build_broker, pending

EMBEDDED_THREADS = 8


class Backend:
    """A dispatcher for the CLI, and `run` to finish an alert in-process when embedded."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.app = WorkerApp(build_broker(rt.settings.redis_url), lambda: rt)
        self.embedded = not rt.settings.redis_url

    @property
    def dispatcher(self) -> Dispatcher:
        return self.app.dispatcher

    def run(self, on_tick: Callable[[], None] | None = None) -> None:
        """Embedded only: work every queued message (retries and delays included) to the end."""
        if not self.embedded:
            return
        worker = dramatiq.Worker(
            self.app.broker, worker_threads=EMBEDDED_THREADS, worker_timeout=100
        )
        worker.start()
        try:
            while True:
                if any(pending(self.app.broker, queue) for queue in QUEUES):
                    pass
                elif (due := recovery.next_settling(self.rt)) is None:
                    break
                elif due <= utcnow():
                    # A send left in doubt (a lost answer): there is no sweeper here, so
                    # settle it in-process once the provider's window has passed.
                    recovery.settle_in_doubt(self.rt, self.dispatcher)
                if on_tick is not None:
                    on_tick()
                time.sleep(0.1)
        finally:
            worker.stop()
            self.app.broker.close()


def backend(rt: Runtime) -> Backend:
    return Backend(rt)
