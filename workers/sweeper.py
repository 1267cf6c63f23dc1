"""The periodic sweep (Procfile `sweeper:`): stale sends, expiry, work the broker lost.

python -m workers.sweeper            # every BROADCAST_SWEEP_INTERVAL seconds
python -m workers.sweeper --once
"""

from __future__ import annotations

import argparse
import logging
import time

from broadcast.recovery import sweep
from workers import app, process_runtime

logger = logging.getLogger("broadcast.sweeper")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--once", action="store_true", help="sweep once and exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    rt = process_runtime()
    while True:
        try:
            report = sweep(rt, app.dispatcher)
            logger.info("sweep: %s", report)
        except Exception:
            logger.exception("sweep failed; trying again next interval")
        if args.once:
            return
        time.sleep(rt.settings.sweep_interval)


if __name__ == "__main__":
    main()
