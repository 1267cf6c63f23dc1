"""The loop the sweeper and scheduler processes share: run a pass, log it, sleep, repeat."""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable

from broadcast.runtime import Runtime
from workers import exit_unless_schema_at_head, process_runtime


def run_periodically(
    description: str,
    name: str,
    one_pass: Callable[[Runtime], object | None],
    interval: Callable[[Runtime], float],
    argv: list[str] | None = None,
    *,
    needs_redis: str | None = None,
) -> None:
    """Parse `--once`, then call one_pass(rt) every interval(rt) seconds; a failing pass is
    logged and tried again next time, never the end of the process. A pass that returns None
    has nothing worth logging."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--once", action="store_true", help="one pass and exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logger = logging.getLogger(f"broadcast.{name}")
    exit_unless_schema_at_head()
    rt = process_runtime()
    if needs_redis and not rt.settings.redis_url:
        parser.error(needs_redis)
    logger.info("%s started (every %s s)", name, interval(rt))
    while True:
        try:
            report = one_pass(rt)
            if report is not None:
                logger.info("%s: %s", name, report)
        except Exception:
            logger.exception("%s pass failed; trying again next interval", name)
        if args.once:
            return
        time.sleep(interval(rt))
