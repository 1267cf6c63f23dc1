"""The in-process twin: exact on a clock the test controls, and safe across threads."""

from __future__ import annotations

import random
import threading
import time

import pytest

from broadcast.capacity import MemoryLimiter, Rate
from tests.capacity.windows import max_in_window, utilisation


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_window_slides_instead_of_resetting_on_the_clock() -> None:
    # Given 10 units per 60 s: 4 granted at t=0 and 6 at t=50
    clock = Clock()
    limiter = MemoryLimiter(Rate(10, 60), clock=clock)
    assert limiter.try_acquire("voice", 4) == 0.0
    clock.now += 50
    assert limiter.try_acquire("voice", 6) == 0.0

    # When a clock-aligned window would have reset (t=59.999), nothing more is granted
    clock.now += 9.999
    assert limiter.try_acquire("voice") == pytest.approx(0.001, abs=1e-9)

    # Then at t=60 the first 4 leave the window, and no more than those 4 fit
    clock.now += 0.001
    assert limiter.try_acquire("voice", 4) == 0.0
    assert limiter.try_acquire("voice") == pytest.approx(50.0, abs=1e-9)
    assert limiter.usage("voice") == 10


def test_never_over_and_fully_used_across_threads() -> None:
    # Given 8 threads with a backlog sharing 20 units per second
    rate = Rate(20, 1)
    limiter = MemoryLimiter(rate)
    grants: list[tuple[float, int]] = []
    stop = time.monotonic() + 3.5

    def work(seed: int) -> None:
        pick = random.Random(seed)
        while time.monotonic() < stop:
            units = pick.choice((1, 1, 2, 3))
            attempt = limiter.wait_for("sms", units, max_wait=stop - time.monotonic())
            if not attempt.granted:
                break  # room for these units comes only after the end of the run
            grants.append((attempt.at, units))  # list.append is atomic in CPython

    # When they ask for units as fast as the limiter allows for 3.5 s
    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then no sliding 1 s window held more than 20 units, and 95% of four windows was used
    assert max_in_window(grants, rate.seconds) <= rate.count
    assert utilisation(grants, rate.count, rate.seconds, windows=3) >= 0.95
