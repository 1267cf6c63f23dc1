"""The scheduler process (Procfile `scheduler:`): releases scheduled alerts when due, ends
unapproved ones past expiry, and escalates across channels. Everything it needs is in the
database, so it can be killed and restarted (or run twice) at any time.

python -m workers.scheduler            # every BROADCAST_SCHEDULER_INTERVAL seconds
python -m workers.scheduler --once
"""

from __future__ import annotations

import argparse
import logging
import time

from broadcast.scheduling import tick
from workers import app, process_runtime

logger = logging.getLogger("broadcast.scheduler")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--once", action="store_true", help="one pass and exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    rt = process_runtime()
    if not rt.settings.redis_url:
        # The stub broker has no workers in this process: use the CLI, which runs them.
        parser.error("no BROADCAST_REDIS_URL: run `broadcast scheduler run` instead")
    logger.info("scheduler started (every %s s)", rt.settings.scheduler_interval)
    while True:
        try:
            report = tick(rt, app.dispatcher, embedded=False)
            if report.busy or report.expired:
                logger.info("tick: %s", report)
        except Exception:
            logger.exception("scheduler pass failed; trying again next interval")
        if args.once:
            return
        time.sleep(rt.settings.scheduler_interval)


if __name__ == "__main__":
    main()
