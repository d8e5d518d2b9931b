"""Prometheus metrics of one Squall process (``GET /metrics``).

One :class:`Metrics` per runtime, with its own registry (no process-global state), passed to
the services that count things. Only counters that are cheap to update on hot paths.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.executions_requested = Counter(
            "squall_executions_requested_total",
            "Executions requested (API, rules, workflows, retries).",
            ["runner"],
            registry=r,
        )
        self.executions_finished = Counter(
            "squall_executions_finished_total",
            "Executions that reached a terminal status.",
            ["status", "runner"],
            registry=r,
        )
        self.executions_in_flight = Gauge(
            "squall_runner_in_flight",
            "Executions this process's runner host is running now.",
            registry=r,
        )
        self.webhooks = Counter(
            "squall_webhooks_total",
            "Webhook requests, by outcome (accepted or the HTTP status).",
            ["outcome"],
            registry=r,
        )
        self.trigger_instances = Counter(
            "squall_trigger_instances_processed_total",
            "Trigger instances processed by the rules engine.",
            ["status"],
            registry=r,
        )
        self.enforcements = Counter(
            "squall_rule_enforcements_total",
            "Rule enforcements, by status (succeeded, failed, suppressed).",
            ["status"],
            registry=r,
        )
        self.timer_ticks = Counter("squall_timer_ticks_total", "Timer ticks fired.", registry=r)
        self.db_write_batch = Histogram(
            "squall_db_write_batch_size",
            "Writes committed per transaction (SQLite group commit).",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=r,
        )

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return bytes(generate_latest(self.registry))
