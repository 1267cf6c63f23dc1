"""/ops, /metrics and /readyz through a real uvicorn server and httpx."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.ops.conftest import Ops
from tests.ops.web_support import TOKEN, seed, web
from tests.support.servers import free_port

BEARER = {"Authorization": f"Bearer {TOKEN}"}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[s.name, tuple(sorted(s.labels.items()))] = s.value
    return out


def test_ops_needs_the_token_and_shows_the_figures(ops: Ops) -> None:
    alert_id = seed(ops)
    with web(ops) as url:
        # Without credentials, or with the wrong ones: 401 and a basic-auth challenge
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic !!"}):
            refused = httpx.get(f"{url}/ops", headers=headers)
            assert refused.status_code == 401
            assert refused.headers["www-authenticate"].startswith("Basic")
            assert "alert" not in refused.text.lower()
        assert httpx.get(f"{url}/ops/data", auth=("ops", "wrong")).status_code == 401
        assert httpx.get(f"{url}/metrics").status_code == 401
        # With the bearer token, or the token as basic-auth password: the dashboard
        page = httpx.get(f"{url}/ops", headers=BEARER)
        assert page.status_code == 200
        assert page.headers["cache-control"] == "no-store"
        assert f"#{alert_id} community-alert" in page.text
        assert "gave up after 3 attempts: unreachable handset" in page.text
        assert "<svg" in page.text and "<polyline" in page.text
        data = httpx.get(f"{url}/ops/data", auth=("anyone", TOKEN)).json()
        sms_queue = next(q for q in data["queues"] if q["queue"] == "sms")
        assert (sms_queue["ready"], sms_queue["dead"]) == (2, 0)
        assert data["alerts"][0]["channels"]["sms"] == {
            "done": 9,
            "total": 12,
            "failed": 3,
            "reached": 6,
            "unreached": {"failed": 2, "undeliverable": 1},
        }
        assert sum(data["history"]["sent_per_minute"]["sms"]) == 6
        assert data["history"]["capacity_per_minute"]["voice"] == 500 / 60
        assert data["waiting"]["sms"]["queued"] == 3
        panels = httpx.get(f"{url}/ops/panels", headers=BEARER)
        assert panels.status_code == 200 and "<html" not in panels.text


def test_metrics_parse_and_match(ops: Ops) -> None:
    seed(ops)
    with web(ops) as url:
        response = httpx.get(f"{url}/metrics", headers=BEARER)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        seen = samples(response.text)
    assert seen["broadcast_deliveries", (("channel", "sms"), ("state", "sent"))] == 6
    assert seen["broadcast_deliveries", (("channel", "sms"), ("state", "failed"))] == 2
    assert seen["broadcast_deliveries", (("channel", "sms"), ("state", "queued"))] == 3
    assert seen["broadcast_queue_messages", (("kind", "ready"), ("queue", "sms"))] == 2
    assert seen["broadcast_dead_letters", (("queue", "sms"),)] == 0
    assert seen["broadcast_capacity_limit_units", (("channel", "voice"),)] == 500
    assert seen["broadcast_capacity_utilisation_ratio", (("channel", "voice"),)] == 0
    assert seen["broadcast_waiting_deliveries", (("channel", "sms"),)] == 3
    assert seen["broadcast_workers_alive", ()] == 0
    # The alert's deliveries that reached no one are counted by state, not hidden in "done"
    assert seen["broadcast_alert_unreached_deliveries", (("alert", "1"), ("state", "failed"))] == 2
    unreachable = (("alert", "1"), ("state", "undeliverable"))
    assert seen["broadcast_alert_unreached_deliveries", unreachable] == 1


def test_nothing_is_exposed_without_a_token(ops: Ops) -> None:
    with web(ops, ops_token=None) as url:
        for path in ("/ops", "/ops/data", "/ops/panels", "/metrics"):
            assert httpx.get(url + path, headers=BEARER).status_code == 404, path
    # A public /metrics (private network Prometheus) still keeps /ops closed
    with web(ops, metrics_public=True) as url:
        assert httpx.get(f"{url}/metrics").status_code == 200
        assert httpx.get(f"{url}/ops").status_code == 401


def test_readyz_checks_database_and_redis(ops: Ops) -> None:
    with web(ops) as url:
        ready = httpx.get(f"{url}/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"database": "ok", "redis": "ok", "status": "ok"}
    # Given a Redis that is not there
    with web(ops, redis_url=f"redis://127.0.0.1:{free_port()}/0") as url:
        ready = httpx.get(f"{url}/readyz")
        assert ready.status_code == 503
        assert ready.json() == {"database": "ok", "redis": "unavailable", "status": "not ready"}
        assert httpx.get(f"{url}/healthz").status_code == 200  # the process itself is up


def test_calls_held_for_quiet_hours_are_not_shown_as_a_stuck_queue(ops: Ops) -> None:
    # Given quiet hours from an hour ago to two hours ahead, and a routine voice alert queued
    local = datetime.now(ZoneInfo("Europe/London"))
    hours = f"{local - timedelta(hours=1):%H:%M}-{local + timedelta(hours=2):%H:%M}"
    ends = (local + timedelta(hours=2)).strftime("%H:%M")
    ops.planned_alert(4, channels=("voice",))
    with web(ops, quiet_hours=hours) as url:
        page = httpx.get(f"{url}/ops", headers=BEARER).text
        data = httpx.get(f"{url}/ops/data", headers=BEARER).json()
    # Then /ops says the calls are held for quiet hours, and until when
    assert data["held"]["voice"]["held"] == 4
    assert data["held"]["voice"]["until_local"].startswith(ends)
    assert f"4 routine calls held for quiet hours until {ends}" in page
    # And the SMS chart says what it counts: segments
    assert "segments sent" in page
