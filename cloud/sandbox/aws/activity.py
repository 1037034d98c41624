"""What the sandbox's principals did: service use for Access Advisor, events for CloudTrail."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class ServiceUse:
    """When a principal last used one service, and (optionally) which actions."""

    namespace: str
    last_accessed: datetime
    actions: Mapping[str, datetime] = field(default_factory=dict)
    region: str = "us-east-1"


@dataclass(frozen=True, slots=True)
class TrailEvent:
    """One CloudTrail management event.

    `principal_arn` is who called: an IAM user, root, a federated user, or a role session
    (`arn:aws:sts::<account>:assumed-role/<role>/<session>`, whose role ARN `issuer_arn` gives
    when it has a path); empty with `invoked_by` for an AWS service. `request_parameters`
    become the event's `requestParameters`; `error_code` marks a failed call.
    """

    account: str
    principal_arn: str
    username: str
    event_name: str
    event_source: str
    event_time: datetime
    resources: tuple[tuple[str, str], ...] = ()
    read_only: bool = True
    region: str = "us-east-1"
    access_key_id: str = ""
    event_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    request_parameters: Mapping[str, str] = field(default_factory=dict)
    invoked_by: str = ""
    issuer_arn: str = ""
    error_code: str = ""


@dataclass(frozen=True, slots=True)
class LastAccessedJob:
    """A GenerateServiceLastAccessedDetails request and how the sandbox will answer it.

    A job completes at once unless, when it was started, its ARN was set to fail (`failure`
    holds the error code and message) or to stay in progress for `pending_reads` reads of it
    (None: forever).
    """

    arn: str
    granularity: str
    created_at: datetime
    failure: tuple[str, str] | None = None
    pending_reads: int | None = 0


class JobStatus(StrEnum):
    """Where a last-accessed job stands, as GetServiceLastAccessedDetails says."""

    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


class ActivityLog:
    """What the sandbox's principals did, as Access Advisor and CloudTrail report it.

    Events come from the seed and tests (`record_event`) and from the IAM writes the sandbox
    answers (`record_call`, off inside `calls_unrecorded()`). `refuse_lookups` makes one
    account's LookupEvents fail, as a missing permission or a throttle would.

    Access Advisor test controls: `fail_jobs` and `hold_jobs` decide how the jobs later
    started for an ARN end, `page_access_advisor` makes GetServiceLastAccessedDetails answer
    in small pages, and `access_advisor_calls` counts the calls.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._uses: dict[str, dict[str, ServiceUse]] = {}
        self._events: list[TrailEvent] = []
        self._jobs: dict[str, LastAccessedJob] = {}
        self._recording_calls = True
        self._refusals: dict[str, str] = {}
        self._lookups: list[tuple[str, float]] = []
        self._job_failures: dict[str, tuple[str, str]] = {}
        self._job_holds: dict[str, int | None] = {}
        self._job_reads: dict[str, int] = {}
        self._advisor_calls: dict[str, int] = {}
        self._advisor_page_size: int | None = None

    def record_use(self, principal_arn: str, use: ServiceUse) -> None:
        """Record (or replace) a principal's last use of one service."""
        with self._lock:
            self._uses.setdefault(principal_arn, {})[use.namespace] = use

    def record_event(self, event: TrailEvent) -> None:
        """Record one CloudTrail event."""
        with self._lock:
            self._events.append(event)

    def record_call(self, event: TrailEvent) -> None:
        """Record an event for an API call the sandbox answered, unless calls are unrecorded."""
        with self._lock:
            if self._recording_calls:
                self._events.append(event)

    @contextmanager
    def calls_unrecorded(self) -> Iterator[None]:
        """Leave the API calls made inside this block out of CloudTrail (the seed's setup)."""
        with self._lock:
            self._recording_calls = False
        try:
            yield
        finally:
            with self._lock:
                self._recording_calls = True

    def uses(self, principal_arn: str) -> tuple[ServiceUse, ...]:
        """Return a principal's recorded service use."""
        with self._lock:
            return tuple(self._uses.get(principal_arn, {}).values())

    def events(self, account: str) -> tuple[TrailEvent, ...]:
        """Return an account's events, newest first."""
        with self._lock:
            mine = [event for event in self._events if event.account == account]
        return tuple(sorted(mine, key=lambda event: event.event_time, reverse=True))

    def refuse_lookups(self, account: str, code: str = "AccessDeniedException") -> None:
        """Make LookupEvents in `account` fail with `code` (e.g. ThrottlingException)."""
        with self._lock:
            self._refusals[account] = code

    def lookup_refusal(self, account: str) -> str | None:
        """Return the error LookupEvents in `account` answers with, if any."""
        with self._lock:
            return self._refusals.get(account)

    def note_lookup(self, account: str) -> None:
        """Remember when `account` called LookupEvents (time.monotonic)."""
        with self._lock:
            self._lookups.append((account, time.monotonic()))

    def lookup_times(self, account: str) -> tuple[float, ...]:
        """Return when `account` called LookupEvents, oldest first (time.monotonic)."""
        with self._lock:
            return tuple(moment for who, moment in self._lookups if who == account)

    def start_job(self, arn: str, granularity: str) -> str:
        """Register a job for `arn` that ends as its controls now say; return its id."""
        job_id = str(uuid.uuid4())
        with self._lock:
            self._count("GenerateServiceLastAccessedDetails")
            self._jobs[job_id] = LastAccessedJob(
                arn,
                granularity,
                datetime.now(UTC),
                failure=self._job_failures.get(arn),
                pending_reads=self._job_holds.get(arn, 0),
            )
            self._job_reads[job_id] = 0
        return job_id

    def job(self, job_id: str) -> LastAccessedJob | None:
        """Return a job by id."""
        with self._lock:
            return self._jobs.get(job_id)

    def read_job(self, job_id: str) -> tuple[LastAccessedJob, JobStatus] | None:
        """Count one GetServiceLastAccessedDetails of a job; return it and where it stands."""
        with self._lock:
            self._count("GetServiceLastAccessedDetails")
            job = self._jobs.get(job_id)
            if job is None:
                return None
            reads = self._job_reads[job_id] = self._job_reads[job_id] + 1
        if job.pending_reads is None or reads <= job.pending_reads:
            return job, JobStatus.IN_PROGRESS
        return job, JobStatus.FAILED if job.failure else JobStatus.COMPLETED

    def fail_jobs(
        self,
        arn: str,
        *,
        code: str = "ServiceFailure",
        message: str = "Access Advisor could not complete the report",
    ) -> None:
        """Make every job started from now on for `arn` end FAILED with this error."""
        with self._lock:
            self._job_failures[arn] = (code, message)

    def hold_jobs(self, arn: str, *, reads: int | None = None) -> None:
        """Keep jobs started from now on for `arn` IN_PROGRESS for `reads` reads (None: forever)."""
        with self._lock:
            self._job_holds[arn] = reads

    def page_access_advisor(self, size: int | None) -> None:
        """Answer GetServiceLastAccessedDetails with at most `size` services a page (None: 100)."""
        with self._lock:
            self._advisor_page_size = size

    def access_advisor_page_size(self) -> int | None:
        """Return the page size set by `page_access_advisor`, if any."""
        with self._lock:
            return self._advisor_page_size

    def access_advisor_calls(self) -> dict[str, int]:
        """Count the Generate- and GetServiceLastAccessedDetails calls answered, by operation."""
        with self._lock:
            return dict(self._advisor_calls)

    def _count(self, operation: str) -> None:
        self._advisor_calls[operation] = self._advisor_calls.get(operation, 0) + 1

    def seeded_state(self) -> tuple[dict[str, dict[str, ServiceUse]], list[TrailEvent]]:
        """A copy of what seeding records (uses and trail events), for `restore_seeded`."""
        with self._lock:
            return {arn: dict(uses) for arn, uses in self._uses.items()}, list(self._events)

    def restore_seeded(
        self, state: tuple[dict[str, dict[str, ServiceUse]], list[TrailEvent]]
    ) -> None:
        """Forget everything, then hold exactly what `seeded_state` copied."""
        self.clear()
        uses, events = state
        with self._lock:
            self._uses.update({arn: dict(by_namespace) for arn, by_namespace in uses.items()})
            self._events.extend(events)

    def clear(self) -> None:
        """Forget everything (after a moto reset)."""
        with self._lock:
            self._uses.clear()
            self._events.clear()
            self._jobs.clear()
            self._refusals.clear()
            self._lookups.clear()
            self._job_failures.clear()
            self._job_holds.clear()
            self._job_reads.clear()
            self._advisor_calls.clear()
            self._advisor_page_size = None
            self._recording_calls = True
