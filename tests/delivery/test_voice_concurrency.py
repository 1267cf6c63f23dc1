"""Voice lines (BROADCAST_VOICE_CONCURRENCY): no more than N calls in progress; a completed call
or a lease that runs out frees a line. In-process limiter and the Redis one."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from broadcast.alerts import approval
from broadcast.alerts import compose as alerts
from broadcast.delivery.deliver import call_completed, deliver_chunk
from broadcast.delivery.dispatch import Chunk, RecordingDispatcher
from broadcast.delivery.planning import Targeting
from broadcast.runtime import Runtime
from broadcast.settings import Settings
from broadcast.store.engine import create_db_engine, upgrade
from tests.delivery.factories import Person, RecordingChannel, add_people
from tests.support.forces import default_force

VARS = {"headline": "Flood warning", "message": "Move to higher ground."}
LINES = 2


@pytest.fixture(params=["memory", "redis"])
def voice(request: pytest.FixtureRequest, tmp_path) -> Iterator[tuple[Runtime, RecordingChannel]]:  # type: ignore[no-untyped-def]
    redis_url = None
    if request.param == "redis":
        redis_url = request.getfixturevalue("redis_url")
        redis.Redis.from_url(redis_url).flushall()
    url = f"sqlite:///{tmp_path / 'voice.db'}"
    settings = Settings(
        _env_file=None,
        database_url=url,
        redis_url=redis_url,
        voice_rate=None,
        voice_concurrency=LINES,
        voice_lease_seconds=1.0,
    )
    engine = create_db_engine(url)
    upgrade(engine)
    engine = default_force(engine)
    channel = RecordingChannel(name="voice")
    rt = Runtime(settings, engine=engine, channels={"voice": channel})
    yield rt, channel
    engine.dispose()


def one_chunk(rt: Runtime, people: int) -> Chunk:
    add_people(rt.engine, [Person(channels=("voice",)) for _ in range(people)])
    # Urgent: routine calls may be held by quiet hours, which are not what this tests.
    alert = alerts.create_alert(
        rt, "community-alert", VARS, ("voice",), Targeting(everyone=True), operator="t", urgent=True
    )
    dispatcher = RecordingDispatcher()
    approval.submit(rt, dispatcher, alert, operator=alert.operator)
    [chunk] = dispatcher.take()
    return chunk


def test_no_more_calls_than_lines_and_completion_frees_one(voice) -> None:  # type: ignore[no-untyped-def]
    rt, channel = voice
    chunk = one_chunk(rt, 5)
    # When a chunk of 5 calls is delivered with 2 lines
    outcome = deliver_chunk(rt, chunk)
    # Then 2 calls are placed, both lines are busy, and the chunk asks to come back later
    assert outcome.sent == LINES and len(channel.sent) == LINES
    assert rt.concurrency().in_use("voice") == LINES
    assert outcome.retry_after is not None and outcome.retry_after > 0
    again = deliver_chunk(rt, chunk)
    assert again.sent == 0 and len(channel.sent) == LINES
    # When the first call's status callback says it completed
    assert call_completed(rt, f"REC{channel.sent[0].delivery_id}") is True
    assert rt.concurrency().in_use("voice") == LINES - 1
    # Then exactly one more call goes out
    assert deliver_chunk(rt, chunk).sent == 1 and len(channel.sent) == LINES + 1
    # An unknown call, or an SMS id, frees nothing
    assert call_completed(rt, "CA-unknown") is False
    assert rt.concurrency().in_use("voice") == LINES


def test_a_lease_that_runs_out_frees_its_line(voice) -> None:  # type: ignore[no-untyped-def]
    rt, channel = voice
    chunk = one_chunk(rt, 3)
    assert deliver_chunk(rt, chunk).sent == LINES
    # Given no status callback ever arrives for the calls in progress
    assert deliver_chunk(rt, chunk).sent == 0
    # When their leases (1 s) run out
    time.sleep(1.1)
    # Then the lines are free again and the last call is placed
    assert rt.concurrency().in_use("voice") == 0
    assert deliver_chunk(rt, chunk).sent == 1
    assert sorted(m.to for m in channel.sent) == sorted({m.to for m in channel.sent})
    assert alerts.alert_status(rt, chunk.alert_id).states["voice"] == {"sent": 3}
