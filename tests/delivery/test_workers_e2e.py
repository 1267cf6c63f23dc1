"""End to end: PostgreSQL, Redis broker, real `dramatiq workers` processes, the Twilio-compatible
test server (its own process) and an aiosmtpd SMTP server; failures produced by the servers."""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Iterator

import pytest
import redis
from sqlalchemy import select

from broadcast.alerts import approval
from broadcast.alerts import compose as alerts
from broadcast.delivery import recovery
from broadcast.delivery.dispatch import Chunk
from broadcast.delivery.planning import Targeting
from broadcast.runtime import Runtime
from broadcast.settings import Settings
from broadcast.store.tables import Delivery, DeliveryState
from tests.delivery.conftest import clean_postgres
from tests.delivery.factories import Person, add_people
from tests.delivery.processes import start_workers, stop_workers, wait_until, workers
from tests.support.smtp_server import smtp_test_server
from tests.support.twilio_process import twilio_server_process
from tests.support.twilio_server import ACCOUNT_SID, AUTH_TOKEN

VARS = {"headline": "Road closed", "message": "Avoid the high street tonight."}


def number(i: int) -> str:
    return f"+447700{900000 + i:06d}"


@pytest.fixture
def stack(postgres_url, redis_url, tmp_path) -> Iterator[dict]:  # type: ignore[no-untyped-def]
    clean_postgres(postgres_url)
    redis.Redis.from_url(redis_url).flushall()
    with twilio_server_process(tmp_path / "twilio.jsonl") as twilio, smtp_test_server() as smtp:
        env = {
            "BROADCAST_DATABASE_URL": postgres_url,
            "BROADCAST_REDIS_URL": redis_url,
            "BROADCAST_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "BROADCAST_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "BROADCAST_TWILIO_API_URL": twilio.url,
            "BROADCAST_SMS_FROM": "+447700900999",
            "BROADCAST_VOICE_FROM": "+447700900998",
            "BROADCAST_SMTP_HOST": "127.0.0.1",
            "BROADCAST_SMTP_PORT": str(smtp.port),
            "BROADCAST_SMTP_TLS": "none",
            "BROADCAST_EMAIL_FROM": "alerts@example.org",
            "BROADCAST_VOICE_RATE": "",
            "BROADCAST_DELIVERY_RETRY_BASE": "0.3",
            "BROADCAST_DELIVERY_CHUNK_SIZE": "10",
            "BROADCAST_DELIVERY_MAX_ATTEMPTS": "3",
            "BROADCAST_PROVIDER_ACCEPT_WINDOW": "1",
        }
        yield {"env": env, "twilio": twilio, "smtp": smtp, "log": tmp_path / "workers.log"}


def runtime(env: dict[str, str], **overrides: object) -> Runtime:
    values = {k.removeprefix("BROADCAST_").lower(): v for k, v in env.items()}
    values = {k: (v if v != "" else None) for k, v in values.items()} | overrides
    return Runtime(Settings(_env_file=None, **values))


def send(rt: Runtime, channels: tuple[str, ...], **kwargs: object):  # type: ignore[no-untyped-def]
    from workers.embedded import Backend

    backend = Backend(rt)
    alert = alerts.create_alert(
        rt, "community-alert", VARS, channels, Targeting(everyone=True), operator="e2e", **kwargs
    )
    approval.submit(rt, backend.dispatcher, alert, operator=alert.operator)
    return alert, backend


def done(rt: Runtime, alert_id: int):  # type: ignore[no-untyped-def]
    return lambda: alerts.alert_status(rt, alert_id).done


def swept_until_done(rt: Runtime, backend, alert_id: int):  # type: ignore[no-untyped-def]
    """Run the sweeper's pass (as the Procfile's sweeper would) until the alert is done."""

    def check() -> bool:
        recovery.sweep(rt, backend.dispatcher)
        return alerts.alert_status(rt, alert_id).done

    return check


def test_every_channel_once_with_each_failure_class(stack) -> None:  # type: ignore[no-untyped-def]
    twilio, smtp, env = stack["twilio"], stack["smtp"], stack["env"]
    rt = runtime(env)
    add_people(rt.engine, [Person() for _ in range(40)])
    # Given the servers fail in every way the engine must handle
    twilio.fail("21211", to=number(0))
    twilio.fail("21610", to=number(1))  # STOP: suppress the number for SMS
    twilio.fail("503", to=number(2), count=2)  # transient, then fine
    twilio.fail("lost-response", to=number(3), count=1)  # accepted, answer lost: in doubt
    smtp.refuse_recipient("person4@example.org", "550 5.1.1 No such user")  # bounce
    smtp.refuse_recipient("person5@example.org", "451 4.3.0 Try later")  # transient for good
    alert, backend = send(rt, ("sms", "email", "voice"))
    # When two worker processes deliver it, with the sweep settling what is in doubt
    with workers(env, stack["log"], processes=2, threads=4):
        wait_until(swept_until_done(rt, backend, alert.id), 90, "the alert to finish", stack["log"])
        status = alerts.alert_status(rt, alert.id)
        # A redelivered message for finished deliveries does nothing
        before = len(twilio.requests)
        from broadcast.delivery.planning import chunks

        with rt.engine.connect() as conn:
            again = [
                type(c)(c.alert_id, c.channel, 0, 10**9) for c in chunks(conn, alert.id, "sms", 10)
            ]
        backend.dispatcher.enqueue(again or [Chunk(alert.id, "sms", 0, 10**9)])
        import time

        time.sleep(1.5)
        assert len(twilio.requests) == before
    sms_to = Counter(r.param("To") for r in twilio.accepted("Messages"))
    calls_to = Counter(r.param("To") for r in twilio.accepted("Calls"))
    # Then every number got one SMS and one call at most; the one whose answer was lost was
    # found at Twilio by the sweep, not sent again
    assert max(sms_to.values()) == 1 and max(calls_to.values()) == 1
    assert len(sms_to) == 40 - 2 and len(calls_to) == 40 - 2
    assert twilio.violations == []
    emails = Counter(m.rcpt_tos[0] for m in smtp.messages)
    assert len(emails) == 38 and max(emails.values()) == 1
    sms, voice = Counter(status.states["sms"]), Counter(status.states["voice"])
    assert sms + voice == {"sent": 76, "undeliverable": 4}, (sms, voice)
    with rt.engine.connect() as conn:
        recovered = conn.execute(
            select(Delivery.recovered).where(Delivery.recovered.is_not(None))
        ).scalars()
        assert list(recovered) == [recovery.FOUND]
    assert status.states["email"] == {"sent": 38, "undeliverable": 1, "failed": 1}
    reasons = {(f["channel"], f["state"]): f["reason"] for f in status.failures}
    assert (
        "opted out" in reasons["sms", "undeliverable"]
        or "invalid" in reasons["sms", "undeliverable"]
    )
    assert "gave up after" in reasons["email", "failed"]
    assert alerts.get_alert(rt, alert.id).status == "done"


def test_capacity_across_processes_and_voice_saturation(stack) -> None:  # type: ignore[no-untyped-def]
    twilio, env = stack["twilio"], stack["env"]
    env = env | {"BROADCAST_SMS_RATE": "20/2s", "BROADCAST_VOICE_RATE": "2/1h"}
    rt = runtime(env)
    add_people(rt.engine, [Person(channels=("sms", "voice")) for _ in range(60)])
    alert, _ = send(rt, ("sms", "voice"))
    with workers(env, stack["log"], processes=2, threads=4):
        wait_until(
            lambda: alerts.alert_status(rt, alert.id).states["sms"].get("sent", 0) == 60,
            60,
            "the SMS",
            stack["log"],
        )
    times = sorted(r.time for r in twilio.accepted("Messages"))
    assert len(times) == 60 and len({r.param("To") for r in twilio.accepted("Messages")}) == 60
    with rt.engine.connect() as conn:
        [units] = (
            conn.execute(select(Delivery.units).where(Delivery.channel == "sms").distinct())
            .scalars()
            .all()
        )
    # Never over: at most 20 units (segments) in any sliding 2 s window as the provider saw them,
    # less 100 ms. The limiter is exact when it decides and holds each slot a guard of 50 ms
    # (2.5% of the window) longer; the request reaches the provider later, with tens of ms of
    # jitter on this busy 2-core box, so together they cover 150 ms of varying delay
    # (docs/capacity.md).
    most, left = 0, 0
    for right, at in enumerate(times):
        while times[left] <= at - (2.0 - 0.1):
            left += 1
        most = max(most, (right - left + 1) * units)
    assert most <= 20, most
    # Fully used: after the first full window, 20 units every 2 s; >= 95% of that
    ideal = (len(times) * units - 20) / 20 * 2.0
    spread = " ".join(f"{t - times[0]:.2f}" for t in times)
    assert times[-1] - times[0] <= ideal / 0.95, spread
    # The saturated voice channel (2/h) placed its 2 calls and held nothing else up
    assert len(twilio.accepted("Calls")) == 2
    assert twilio.violations == []


def test_urgent_overtakes_routine_backlog(stack) -> None:  # type: ignore[no-untyped-def]
    twilio, env = stack["twilio"], stack["env"]
    env = env | {"BROADCAST_SMS_RATE": "10/1s"}
    rt = runtime(env)
    add_people(rt.engine, [Person(channels=("sms",)) for _ in range(60)])
    routine, _ = send(rt, ("sms",))
    with workers(env, stack["log"], processes=1, threads=4):
        wait_until(lambda: len(twilio.accepted("Messages")) >= 10, 30, "routine to start")
        urgent, _ = send(rt, ("sms",), urgent=True)
        wait_until(done(rt, urgent.id), 30, "the urgent alert", stack["log"])
        routine_left = alerts.alert_status(rt, routine.id).states["sms"].get("queued", 0)
        wait_until(done(rt, routine.id), 30, "the routine alert", stack["log"])
    # The urgent 60 went out while routine deliveries were still waiting
    assert routine_left >= 20, routine_left


def test_worker_killed_and_redis_flushed_mid_alert(stack, redis_url) -> None:  # type: ignore[no-untyped-def]
    twilio, env, log = stack["twilio"], stack["env"], stack["log"]
    rt = runtime(env)
    add_people(rt.engine, [Person(channels=("sms",)) for _ in range(60)])
    twilio.fail("slow", delay=0.2)  # every request takes a while, so the kill lands mid-send
    alert, backend = send(rt, ("sms",))
    process = start_workers(env, log, processes=1, threads=4)
    wait_until(lambda: len(twilio.requests) >= 15, 30, "sending to start", log)
    # When the worker is killed outright and Redis loses every queued message
    stop_workers(process, signal.SIGKILL)
    redis.Redis.from_url(redis_url).flushall()
    states = alerts.alert_status(rt, alert.id).states["sms"]
    assert states.get("queued", 0) > 0
    # Then resume settles the sends in flight (asking the provider) and queues the rest again
    report = recovery.resume_alert(rt, backend.dispatcher, alert.id, stale_after=0)
    assert report.requeued_messages > 0 and report.in_doubt == 0
    with workers(env, log, processes=1, threads=4):
        wait_until(done(rt, alert.id), 60, "the alert to finish after resume", log)
    final = alerts.alert_status(rt, alert.id).states["sms"]
    assert set(final) <= {DeliveryState.SENT, DeliveryState.IN_DOUBT}, final
    sent_to = Counter(r.param("To") for r in twilio.accepted("Messages"))
    assert len(sent_to) == 60 and max(sent_to.values()) == 1, sent_to.most_common(3)


@pytest.mark.parametrize("channel", ["sms", "email"])
def test_capacity_holds_in_the_first_window_after_a_fresh_start(stack, channel: str) -> None:  # type: ignore[no-untyped-def]
    """Freshly started processes build and connect their channels before taking capacity: the
    first second after a start carries no more than the limit at the provider."""
    twilio, smtp, env = stack["twilio"], stack["smtp"], stack["env"]
    count = 40
    env = env | {f"BROADCAST_{channel.upper()}_RATE": f"{count}/1s"}
    env |= {"BROADCAST_DELIVERY_CHUNK_SIZE": "50"}
    rt = runtime(env)
    add_people(rt.engine, [Person(channels=(channel,)) for _ in range(3 * count)])
    # Given the alert is queued before any worker runs, so every fresh thread starts at once
    alert, _ = send(rt, (channel,))
    with workers(env, stack["log"], processes=2, threads=8):
        wait_until(done(rt, alert.id), 60, "the alert", stack["log"])
    if channel == "sms":
        times = sorted(r.time for r in twilio.accepted("Messages"))
    else:
        times = sorted(m.received_at for m in smtp.messages)
    assert len(times) == 3 * count
    # Then no 1 s window at the provider (less 50 ms for the way there) holds more than COUNT,
    # the first one included
    most, left = 0, 0
    for right, at in enumerate(times):
        while times[left] <= at - (1.0 - 0.05):
            left += 1
        most = max(most, right - left + 1)
    assert most <= count, (most, " ".join(f"{t - times[0]:.2f}" for t in times[: count + 5]))
