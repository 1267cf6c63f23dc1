"""The periodic sweep (Procfile `sweeper:`): stale sends, expiry, work the broker lost.

python -m workers.sweeper            # every BROADCAST_SWEEP_INTERVAL seconds
python -m workers.sweeper --once
"""

from __future__ import annotations

from broadcast.delivery.recovery import sweep
from workers import app
from workers.periodic import run_periodically


def main(argv: list[str] | None = None) -> None:
    run_periodically(
        __doc__.splitlines()[0],
        "sweeper",
        lambda rt: sweep(rt, app.dispatcher),
        lambda rt: rt.settings.sweep_interval,
        argv,
    )


if __name__ == "__main__":
    main()
