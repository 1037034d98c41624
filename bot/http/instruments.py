"""This replica's counters and histograms, counted as events happen (never rebuilt).

Each replica counts what it did itself, from zero when it starts, as Prometheus expects of a
process: a series only goes up, a restart is a reset `rate()` already handles, and the fleet's
figure is a `sum` over replicas. `Instruments` is the `bot.core.observations.Observer` the
composition root hands the services; the HTTP middleware counts requests into it too.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from bot.core.observations import DECIDED, GRANT_MOVES

SECONDS = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600)


class Instruments:
    """Counters and histograms of one replica, on a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.http_requests = Counter(
            "leash_http_requests",
            "HTTP requests this replica answered, by route and status class",
            ("route", "status"),
            registry=registry,
        )
        self.requests_decided = Counter(
            "leash_requests_decided",
            "Access requests this replica decided (approved, denied, expired, cancelled)",
            ("state",),
            registry=registry,
        )
        self.grant_transitions = Counter(
            "leash_grant_transitions",
            "Grants this replica moved into a state (active = applied to the cloud)",
            ("state",),
            registry=registry,
        )
        self.approval_wait = _histogram(
            registry, "leash_approval_wait_seconds", "Request made to decided, per decision"
        )
        self.grant_apply = _histogram(
            registry, "leash_grant_apply_seconds", "Approval to grant in force in the cloud"
        )
        self.revoke_lag = _histogram(
            registry, "leash_revoke_lag_seconds", "Expiry to revocation, per expired grant"
        )
        self.scan_duration = _histogram(
            registry, "leash_scan_duration_seconds", "Usage scan runs by duration"
        )
        self.scan_errors = Counter(
            "leash_scan_errors",
            "Identities whose usage a scan run of this replica could not read",
            registry=registry,
        )
        # Every state from zero, so the first event of each is an increase rate() sees.
        for state in DECIDED:
            self.requests_decided.labels(state=state.value)
        for grant_state in GRANT_MOVES:
            self.grant_transitions.labels(state=grant_state.value)

    def http_answered(self, route: str, status: int) -> None:
        self.http_requests.labels(route=route, status=f"{status // 100}xx").inc()

    def request_decided(self, state: str, *, waited_seconds: float | None) -> None:
        self.requests_decided.labels(state=state).inc()
        if waited_seconds is not None:
            self.approval_wait.observe(waited_seconds)

    def grant_moved(
        self, state: str, *, apply_seconds: float | None, revoke_lag_seconds: float | None
    ) -> None:
        self.grant_transitions.labels(state=state).inc()
        if apply_seconds is not None:
            self.grant_apply.observe(apply_seconds)
        if revoke_lag_seconds is not None:
            self.revoke_lag.observe(revoke_lag_seconds)

    def scan_completed(self, *, seconds: float, failed: int) -> None:
        self.scan_duration.observe(seconds)
        self.scan_errors.inc(failed)


def _histogram(registry: CollectorRegistry, name: str, help_text: str) -> Histogram:
    return Histogram(name, help_text, buckets=SECONDS, registry=registry)
