"""The service's Prometheus metrics (``/metrics``)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge

from budgetguard.service.outcomes import Gauge as FindingGauge

__all__ = ["Metrics"]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ["budget", "group", "group_name"]  # group_name: with display names
        self.spend = Gauge(
            "budgetguard_spend",
            "Spend in the budget's window (USD or units)",
            labels,
            registry=self.registry,
        )
        self.limit = Gauge(
            "budgetguard_limit", "The budget's limit", labels, registry=self.registry
        )
        self.ratio = Gauge("budgetguard_ratio", "Spend / limit", labels, registry=self.registry)
        self.collected = Gauge(
            "budgetguard_last_collect_timestamp_seconds",
            "When each endpoint's data was last collected successfully",
            ["endpoint"],
            registry=self.registry,
        )
        self.notifications = Counter(
            "budgetguard_notifications",
            "Delivery attempts by outcome",
            ["notifier", "outcome"],
            registry=self.registry,
        )
        self.jobs = Counter(
            "budgetguard_jobs",
            "Jobs (tick, digest, retry) run in a worker to their end, failed or not, by job",
            ["job"],
            registry=self.registry,
        )
        self.job_failures = Counter(
            "budgetguard_job_failures",
            "Jobs (tick, digest, retry) that failed, by job",
            ["job"],
            registry=self.registry,
        )
        self.tick_seconds = Gauge(
            "budgetguard_tick_duration_seconds", "Duration of the last tick", registry=self.registry
        )
        self.tick_ok = Gauge(
            "budgetguard_last_successful_tick_timestamp_seconds",
            "When the last tick succeeded",
            registry=self.registry,
        )
        self.leader = Gauge(
            "budgetguard_leader", "1 when this replica runs the jobs", registry=self.registry
        )

    def set_findings(self, found: Iterable[FindingGauge]) -> None:
        """The last tick's findings (``service/jobs.gauges``), replacing the previous ones."""
        self.spend.clear()
        self.limit.clear()
        self.ratio.clear()
        for f in found:
            if f.spend is not None:
                self.spend.labels(f.budget, f.group, f.shown).set(f.spend)
            if f.limit is not None:
                self.limit.labels(f.budget, f.group, f.shown).set(f.limit)
            if f.ratio is not None:
                self.ratio.labels(f.budget, f.group, f.shown).set(f.ratio)
