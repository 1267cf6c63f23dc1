from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
import redis

from broadcast.capacity import CapacityLimiter, MemoryLimiter, Rate, RedisLimiter


@pytest.fixture
def prefix() -> str:
    """A key prefix of this test's own, so tests sharing the session's Redis never meet."""
    return f"test:{uuid.uuid4().hex[:10]}:"


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture(params=["redis", "memory"])
def make_limiter(
    request: pytest.FixtureRequest, prefix: str
) -> Callable[[Rate | None], CapacityLimiter]:
    """Build the Redis limiter or its in-process twin: the same behaviour is asked of both."""
    if request.param == "memory":
        return lambda rate: MemoryLimiter(rate)
    client = request.getfixturevalue("redis_client")
    return lambda rate: RedisLimiter(client, rate, prefix=prefix)
