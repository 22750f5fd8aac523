"""Prometheus metrics of one ``serve`` process.

Counters move as the worker records results (through its listener hook); the queue
depth and channel pauses are read from the database at scrape time, so they are right
whichever process did the work.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ..delivery.outbox import Claimed, Result
from ..delivery.outcomes import Outcome
from ..delivery.states import EventState
from ..delivery.worker import Worker
from ..insight import reconcile
from ..line_time import line_month
from ..store.database import Database


class _StorageCollector(Collector):
    def __init__(self, db: Database, rate_limit: float) -> None:
        self._db = db
        self._rate_limit = rate_limit

    def collect(self):  # type: ignore[no-untyped-def]
        depth = GaugeMetricFamily(
            "lineoa_export_queue_depth", "Events waiting, by activation and state", labels=["activation", "state"]
        )
        for row in self._db.run("queue_depth"):
            depth.add_metric([row["activation"], row["state"]], row["n"])
        yield depth
        paused = GaugeMetricFamily(
            "lineoa_export_channel_paused", "1 while a LINE channel is paused", labels=["channel", "kind"]
        )
        for row in self._db.run("channel_pauses_all"):
            paused.add_metric([row["channel_key"], row["kind"]], 1)
        yield paused
        rate = GaugeMetricFamily("lineoa_export_channel_rate_limit", "Configured pushes per second per channel")
        rate.add_metric([], self._rate_limit)
        yield rate
        withheld = GaugeMetricFamily(
            "lineoa_export_aggregation_unit_withheld",
            "1 while an activation's pushes go without their aggregation unit (LINE's 1,000 this month used up)",
            labels=["activation", "unit"],
        )
        for row in self._db.run("aggregation_units_withheld", {"month": line_month(time.time())}):
            withheld.add_metric([row["activation"], row["unit"]], 1)
        yield withheld
        verdict = GaugeMetricFamily(
            "lineoa_export_reconciliation",
            "1 for the verdict of the latest day reconciled, by authentication (equal, line_more, line_fewer, ...)",
            labels=["authentication", "day", "verdict"],
        )
        difference = GaugeMetricFamily(
            "lineoa_export_reconciliation_difference",
            "LINE's count of the latest reconciled day's pushes minus ours (0: equal), by authentication",
            labels=["authentication", "day"],
        )
        for r in reconcile.latest(self._db):
            verdict.add_metric([r.authentication, r.day.isoformat(), r.verdict], 1)
            if r.line_count is not None:
                difference.add_metric([r.authentication, r.day.isoformat()], r.line_count - r.our_count)
        yield verdict
        yield difference


class _LaneCollector(Collector):
    """What this process's worker holds per channel, read at scrape time from its lanes."""

    def __init__(self, worker: Worker) -> None:
        self._worker = worker

    def collect(self):  # type: ignore[no-untyped-def]
        in_flight = GaugeMetricFamily(
            "lineoa_export_lane_in_flight", "Pushes in flight, by LINE channel", labels=["channel"]
        )
        budget = GaugeMetricFamily(
            "lineoa_export_lane_budget",
            "Pushes a channel may have in flight (rate x observed latency x 1.5 + burst, within its share)",
            labels=["channel"],
        )
        latency = GaugeMetricFamily(
            "lineoa_export_lane_latency_seconds", "Average time LINE took to answer, by channel", labels=["channel"]
        )
        tripped = GaugeMetricFamily(
            "lineoa_export_channel_tripped", "1 while a channel's circuit breaker is open", labels=["channel"]
        )
        for key, lane in self._worker.lanes().items():
            in_flight.add_metric([key], lane.in_flight)
            budget.add_metric([key], lane.limit())
            latency.add_metric([key], lane.budget.latency)
            tripped.add_metric([key], 1 if lane.breaker.open else 0)
        degraded = GaugeMetricFamily(
            "lineoa_export_rate_limit_degraded",
            "1 while a channel's shared (Redis) rate limit is unreachable and a local share is used",
            labels=["channel"],
        )
        for key in self._worker.rate_limit_degraded():
            degraded.add_metric([key], 1)
        yield from (in_flight, budget, latency, tripped, degraded)


class Metrics:
    def __init__(self, db: Database, *, rate_limit: float) -> None:
        self.registry = CollectorRegistry()
        self.accepted = Counter(
            "lineoa_export_events_accepted",
            "Events accepted by trigger",
            ["activation", "status"],
            registry=self.registry,
        )
        self.attempts = Counter(
            "lineoa_export_push_attempts",
            "Push attempts by HTTP status ('none': no answer)",
            ["activation", "status_code"],
            registry=self.registry,
        )
        self.delivered = Counter(
            "lineoa_export_events_delivered", "Events delivered", ["activation"], registry=self.registry
        )
        self.failed = Counter(
            "lineoa_export_events_failed",
            "Events failed for good",
            ["activation", "status_code"],
            registry=self.registry,
        )
        self.retried = Counter(
            "lineoa_export_events_retried", "Retries scheduled", ["activation", "status_code"], registry=self.registry
        )
        self.suppressed = Counter(
            "lineoa_export_events_suppressed",
            "Events the audience gate settled without sending (blocked, quiet hours dropped, over the cap)",
            ["activation"],
            registry=self.registry,
        )
        self.deferred = Counter(
            "lineoa_export_events_deferred",
            "Times the audience gate deferred an event (quiet hours, over the cap)",
            ["activation"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "lineoa_export_delivery_latency_seconds",
            "From trigger accepted to the start of the push that delivered it (retry waits included)",
            buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
            registry=self.registry,
        )
        self.registry.register(_StorageCollector(db, rate_limit))

    def watch(self, worker: Worker) -> None:
        """Also expose the lanes of this process's worker (in flight, budget, breaker, degraded limits),
        and count the events its audience gate holds back."""
        self.registry.register(_LaneCollector(worker))
        worker.on_held = self.on_held

    def on_held(self, activation: str, state: EventState) -> None:
        """Worker hook: the audience gate suppressed or deferred one event (from the worker's database thread)."""
        if state is EventState.SUPPRESSED:
            self.suppressed.labels(activation).inc()
        elif state is EventState.DEFERRED:
            self.deferred.labels(activation).inc()

    def on_result(self, claimed: Claimed, result: Result, outcome: Outcome | None) -> None:
        """Worker listener: count what one result says."""
        activation = claimed.activation
        code = str(result.status_code) if result.status_code is not None else "none"
        if outcome is not None:
            self.attempts.labels(activation, code).inc()
        if result.state is EventState.DELIVERED:
            self.delivered.labels(activation).inc()
            self.latency.observe(max(0.0, result.started_at - claimed.accepted_at))
        elif result.state is EventState.FAILED:
            self.failed.labels(activation, code).inc()
        elif result.state is EventState.RETRYING:
            self.retried.labels(activation, code).inc()

    def on_accepted(self, activation: str, statuses: list[str]) -> None:
        for status in statuses:
            self.accepted.labels(activation, status).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
