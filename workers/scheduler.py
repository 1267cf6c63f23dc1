"""The scheduler process (Procfile `scheduler:`): releases scheduled alerts when due, ends
unapproved ones past expiry, and escalates across channels. Everything it needs is in the
database, so it can be killed and restarted (or run twice) at any time.

python -m workers.scheduler            # every BROADCAST_SCHEDULER_INTERVAL seconds
python -m workers.scheduler --once
"""

from __future__ import annotations

from broadcast.alerts.scheduling import tick
from broadcast.runtime import Runtime
from workers import app
from workers.periodic import run_periodically


def _one_pass(rt: Runtime) -> object | None:
    report = tick(rt, app.dispatcher, embedded=False)
    return report if report.busy or report.expired else None


def main(argv: list[str] | None = None) -> None:
    run_periodically(
        __doc__.splitlines()[0],
        "scheduler",
        _one_pass,
        lambda rt: rt.settings.scheduler_interval,
        argv,
        # The stub broker has no workers in this process: the CLI runs them.
        needs_redis="no BROADCAST_REDIS_URL: run `broadcast scheduler run` instead",
    )


if __name__ == "__main__":
    main()
