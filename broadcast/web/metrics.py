"""/metrics: Prometheus exposition of what the database, the limiters and the broker say now.

Every figure is read when Prometheus scrapes (a custom collector), so any number of web
processes report the same values and nothing is counted twice. Behind BROADCAST_OPS_TOKEN like
/ops, unless BROADCAST_METRICS_PUBLIC=true. The delivery code records no per-request provider
timings, so there is no provider latency histogram here; Dramatiq's own middleware on the
workers (`workers.monitor.add_prometheus`) exports message durations. docs/operations.md
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from broadcast.alerts.outcome import unreached as unreached_states
from broadcast.ops import figures as monitoring_figures
from broadcast.ops.queues import QueueMonitor
from broadcast.runtime import Runtime
from broadcast.web.deps import Ctx
from broadcast.web.ops import queue_monitor, refusal
from broadcast.web.sms_caps import SCOPES, SmsCaps

router = APIRouter(include_in_schema=False)


class BroadcastCollector(Collector):
    """Reads the figures on every scrape."""

    def __init__(
        self, rt: Runtime, monitor: QueueMonitor | None, caps: SmsCaps | None = None
    ) -> None:
        self.rt, self.monitor, self.caps = rt, monitor, caps

    def collect(self) -> Iterator[Metric]:
        deliveries = GaugeMetricFamily(
            "broadcast_deliveries", "Deliveries by channel and state.", labels=["channel", "state"]
        )
        for channel, states in sorted(monitoring_figures.delivery_counts(self.rt.engine).items()):
            for state, n in sorted(states.items()):
                deliveries.add_metric([channel, state], n)
        yield deliveries
        used = GaugeMetricFamily(
            "broadcast_capacity_used_units",
            "Units granted in the channel's current window.",
            labels=["channel"],
        )
        limit = GaugeMetricFamily(
            "broadcast_capacity_limit_units", "Units allowed per window.", labels=["channel"]
        )
        share = GaugeMetricFamily(
            "broadcast_capacity_utilisation_ratio",
            "Units used in the window over units allowed (limited channels).",
            labels=["channel"],
        )
        for c in monitoring_figures.capacity(self.rt):
            used.add_metric([c.channel], c.used)
            if c.limit:
                limit.add_metric([c.channel], c.limit)
                share.add_metric([c.channel], c.utilisation or 0.0)
        yield from (used, limit, share)
        queued = GaugeMetricFamily(
            "broadcast_waiting_deliveries", "Deliveries queued, per channel.", labels=["channel"]
        )
        oldest = GaugeMetricFamily(
            "broadcast_oldest_waiting_seconds",
            "Age of the oldest queued delivery, per channel.",
            labels=["channel"],
        )
        for channel, (n, age) in sorted(monitoring_figures.waiting(self.rt.engine).items()):
            queued.add_metric([channel], n)
            oldest.add_metric([channel], age)
        yield from (queued, oldest)
        yield self._unreached()
        if self.monitor is not None:
            yield from self._broker()
        if self.caps is not None:
            yield from self._sms_caps()

    def _sms_caps(self) -> Iterator[Metric]:
        """Confirmation SMS refused by the pumping caps in the last hour (alert on > 0)."""
        assert self.caps is not None
        refused = GaugeMetricFamily(
            "broadcast_confirmation_sms_capped",
            "Confirmation SMS not sent in the last hour because a cap was reached, per cap.",
            labels=["cap"],
        )
        found = {a.scope: a.refused for a in self.caps.alarms()}
        for scope in SCOPES:
            refused.add_metric([scope], found.get(scope, 0))
        yield refused

    def _unreached(self) -> Metric:
        """Alerts of the last 24 h that did not reach everyone: "done" alone is not the story."""
        unreached = GaugeMetricFamily(
            "broadcast_alert_unreached_deliveries",
            "Deliveries of an alert (sending or finished in the last 24 h) that ended without "
            "reaching anyone: expired, failed, undeliverable, in-doubt.",
            labels=["alert", "state"],
        )
        recent = monitoring_figures.live_alerts(self.rt.engine, within=timedelta(hours=24))
        for a in recent:
            for state, n in unreached_states(
                {c: p["unreached"] for c, p in a["channels"].items()}
            ).items():
                unreached.add_metric([str(a["id"]), state], n)
        return unreached

    def _broker(self) -> Iterator[Metric]:
        assert self.monitor is not None
        depth = GaugeMetricFamily(
            "broadcast_queue_messages",
            "Broker messages per queue: ready, delayed, in_progress (taken by a worker).",
            labels=["queue", "kind"],
        )
        dead = GaugeMetricFamily(
            "broadcast_dead_letters", "Dead-lettered messages per queue.", labels=["queue"]
        )
        for q in self.monitor.queues():
            for kind in ("ready", "delayed", "in_progress"):
                depth.add_metric([q.queue, kind], getattr(q, kind))
            dead.add_metric([q.queue], q.dead)
        yield from (depth, dead)
        workers = self.monitor.workers()
        if workers is not None:
            yield GaugeMetricFamily(
                "broadcast_workers_alive", "Worker processes seen alive.", value=len(workers)
            )


@router.get("/metrics")
async def metrics(request: Request, ctx: Ctx) -> Response:
    if (refused := refusal(request, public=ctx.settings.metrics_public)) is not None:
        return refused
    registry = CollectorRegistry(auto_describe=False)
    registry.register(
        BroadcastCollector(ctx.runtime(), queue_monitor(request, ctx), ctx.confirmations.caps)
    )
    body = await run_in_threadpool(generate_latest, registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})
