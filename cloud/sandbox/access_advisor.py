"""IAM Access Advisor and CloudTrail LookupEvents for moto, answered from recorded activity.

moto 5.2 answers these calls with HTTP 500. `install` gives its response classes the missing
handlers; they read an `ActivityLog` that the seed (or a test) fills.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from moto.cloudtrail.responses import CloudTrailResponse
    from moto.core.responses import ActionResult
    from moto.iam.models import IAMBackend
    from moto.iam.responses import IamResponse

SERVICE_NAMES = {
    "bedrock": "Amazon Bedrock",
    "cloudwatch": "Amazon CloudWatch",
    "dynamodb": "Amazon DynamoDB",
    "iam": "AWS Identity and Access Management",
    "kms": "AWS Key Management Service",
    "lambda": "AWS Lambda",
    "logs": "Amazon CloudWatch Logs",
    "s3": "Amazon S3",
    "sagemaker": "Amazon SageMaker",
    "secretsmanager": "AWS Secrets Manager",
    "sqs": "Amazon SQS",
    "sts": "AWS Security Token Service",
}
# CloudTrail's LookupEvents attribute keys, mapped to what each matches on an event.
LOOKUP_KEYS: dict[str, Callable[[TrailEvent], Iterable[str]]] = {
    "EventId": lambda e: (e.event_id,),
    "EventName": lambda e: (e.event_name,),
    "ReadOnly": lambda e: (str(e.read_only).lower(),),
    "Username": lambda e: (e.username,),
    "ResourceType": lambda e: (kind for kind, _ in e.resources),
    "ResourceName": lambda e: (name for _, name in e.resources),
    "EventSource": lambda e: (e.event_source,),
    "AccessKeyId": lambda e: (e.access_key_id,),
}
LOOKBACK = timedelta(days=90)


@dataclass(frozen=True, slots=True)
class ServiceUse:
    """When a principal last used one service, and (optionally) which actions."""

    namespace: str
    last_accessed: datetime
    actions: Mapping[str, datetime] = field(default_factory=dict)
    region: str = "us-east-1"


@dataclass(frozen=True, slots=True)
class TrailEvent:
    """One CloudTrail management event."""

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


@dataclass(frozen=True, slots=True)
class LastAccessedJob:
    """A GenerateServiceLastAccessedDetails request; the sandbox completes it at once."""

    arn: str
    granularity: str
    created_at: datetime


class ActivityLog:
    """What the sandbox's principals did, as Access Advisor and CloudTrail report it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._uses: dict[str, dict[str, ServiceUse]] = {}
        self._events: list[TrailEvent] = []
        self._jobs: dict[str, LastAccessedJob] = {}

    def record_use(self, principal_arn: str, use: ServiceUse) -> None:
        """Record (or replace) a principal's last use of one service."""
        with self._lock:
            self._uses.setdefault(principal_arn, {})[use.namespace] = use

    def record_event(self, event: TrailEvent) -> None:
        """Record one CloudTrail event."""
        with self._lock:
            self._events.append(event)

    def uses(self, principal_arn: str) -> tuple[ServiceUse, ...]:
        """Return a principal's recorded service use."""
        with self._lock:
            return tuple(self._uses.get(principal_arn, {}).values())

    def events(self, account: str) -> tuple[TrailEvent, ...]:
        """Return an account's events, newest first."""
        with self._lock:
            mine = [event for event in self._events if event.account == account]
        return tuple(sorted(mine, key=lambda event: event.event_time, reverse=True))

    def start_job(self, arn: str, granularity: str) -> str:
        """Register a last-accessed job and return its id."""
        job_id = str(uuid.uuid4())
        with self._lock:
            self._jobs[job_id] = LastAccessedJob(arn, granularity, datetime.now(UTC))
        return job_id

    def job(self, job_id: str) -> LastAccessedJob | None:
        """Return a job by id."""
        with self._lock:
            return self._jobs.get(job_id)

    def clear(self) -> None:
        """Forget everything (after a moto reset)."""
        with self._lock:
            self._uses.clear()
            self._events.clear()
            self._jobs.clear()


def install(log: ActivityLog) -> None:
    """Give moto's IAM and CloudTrail response classes handlers that answer from `log`."""
    from moto.cloudtrail.responses import CloudTrailResponse
    from moto.iam.responses import IamResponse

    iam_handlers = {
        "generate_service_last_accessed_details": _generate_handler(log),
        "get_service_last_accessed_details": _get_handler(log),
    }
    for name, handler in iam_handlers.items():
        setattr(IamResponse, name, handler)
    for name, trail_handler in {"lookup_events": _lookup_handler(log)}.items():
        setattr(CloudTrailResponse, name, trail_handler)


def _generate_handler(log: ActivityLog) -> Callable[[IamResponse], ActionResult]:
    def generate_service_last_accessed_details(self: IamResponse) -> ActionResult:
        from moto.core.responses import ActionResult

        arn = str(self._get_param("Arn"))
        granularity = str(self._get_param("Granularity") or "SERVICE_LEVEL")
        _policies_of(self.backend, arn)  # raises NoSuchEntity for an unknown role or user
        return ActionResult({"JobId": log.start_job(arn, granularity)})

    return generate_service_last_accessed_details


def _get_handler(log: ActivityLog) -> Callable[[IamResponse], ActionResult]:
    def get_service_last_accessed_details(self: IamResponse) -> ActionResult:
        from moto.core.responses import ActionResult
        from moto.iam.exceptions import NoSuchEntity

        job_id = str(self._get_param("JobId"))
        job = log.job(job_id)
        if job is None:
            raise NoSuchEntity(f"No job with id {job_id} exists.")
        granted = _granted_namespaces(_policies_of(self.backend, job.arn))
        return ActionResult(
            {
                "JobStatus": "COMPLETED",
                "JobType": job.granularity,
                "JobCreationDate": job.created_at,
                "JobCompletionDate": job.created_at,
                "ServicesLastAccessed": _services(job, log.uses(job.arn), granted),
                "IsTruncated": False,
            }
        )

    return get_service_last_accessed_details


def _services(
    job: LastAccessedJob, uses: Iterable[ServiceUse], granted: set[str]
) -> list[dict[str, Any]]:
    by_namespace = {use.namespace: use for use in uses}
    services: list[dict[str, Any]] = []
    for namespace in sorted(granted | set(by_namespace)):
        entry: dict[str, Any] = {
            "ServiceName": SERVICE_NAMES.get(namespace, namespace),
            "ServiceNamespace": namespace,
            "TotalAuthenticatedEntities": 0,
        }
        use = by_namespace.get(namespace)
        if use is not None:
            entry |= {
                "LastAuthenticated": use.last_accessed,
                "LastAuthenticatedEntity": job.arn,
                "LastAuthenticatedRegion": use.region,
                "TotalAuthenticatedEntities": 1,
            }
            if job.granularity == "ACTION_LEVEL":
                entry["TrackedActionsLastAccessed"] = [
                    {
                        "ActionName": action.split(":")[-1],
                        "LastAccessedEntity": job.arn,
                        "LastAccessedTime": when,
                        "LastAccessedRegion": use.region,
                    }
                    for action, when in sorted(use.actions.items())
                ]
        services.append(entry)
    return services


def _policies_of(backend: IAMBackend, arn: str) -> list[str]:
    """Return the policy documents of the role or user `arn` names in this account."""
    from moto.iam.exceptions import InvalidInput, NoSuchEntity

    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[2] != "iam":
        raise InvalidInput(f"ARN {arn} is not valid.")
    if parts[4] != backend.account_id:
        raise NoSuchEntity(f"The entity {arn} does not exist in account {backend.account_id}.")
    resource = parts[5]
    if resource.startswith("role/"):
        entity: Any = backend.get_role_by_arn(arn)
    elif resource.startswith("user/"):
        entity = backend.get_user(resource.rsplit("/", 1)[-1])
    else:
        raise InvalidInput("The Leash sandbox answers Access Advisor for roles and users only.")
    documents = list(entity.policies.values())
    for policy in entity.managed_policies.values():
        documents += [v.document for v in policy.versions if v.is_default]
    return documents


def _granted_namespaces(documents: Iterable[str]) -> set[str]:
    namespaces: set[str] = set()
    for document in documents:
        statements = json.loads(document).get("Statement", [])
        for statement in [statements] if isinstance(statements, dict) else statements:
            if statement.get("Effect") != "Allow":
                continue
            actions = statement.get("Action", [])
            for action in [actions] if isinstance(actions, str) else actions:
                if ":" in action:
                    namespaces.add(action.split(":", 1)[0].lower())
    return namespaces


def _lookup_handler(log: ActivityLog) -> Callable[[CloudTrailResponse], str]:
    def lookup_events(self: CloudTrailResponse) -> str:
        now = datetime.now(UTC)
        start = _moment(self._get_param("StartTime")) or now - LOOKBACK
        end = _moment(self._get_param("EndTime")) or now
        attributes = self._get_param("LookupAttributes") or []
        limit = min(int(self._get_param("MaxResults") or 50), 50)
        offset = int(self._get_param("NextToken") or 0)
        matching = [
            event
            for event in log.events(self.current_account)
            if start <= event.event_time <= end
            and all(
                attribute["AttributeValue"] in LOOKUP_KEYS[attribute["AttributeKey"]](event)
                for attribute in attributes
                if attribute.get("AttributeKey") in LOOKUP_KEYS
            )
        ]
        page = matching[offset : offset + limit]
        body: dict[str, Any] = {"Events": [_event_json(event) for event in page]}
        if offset + limit < len(matching):
            body["NextToken"] = str(offset + limit)
        return json.dumps(body)

    return lookup_events


def _moment(value: object) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _event_json(event: TrailEvent) -> dict[str, Any]:
    detail = {
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "AssumedRole" if ":assumed-role/" in event.principal_arn else "IAMUser",
            "arn": event.principal_arn,
            "accountId": event.account,
            "accessKeyId": event.access_key_id,
        },
        "eventTime": event.event_time.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": event.event_source,
        "eventName": event.event_name,
        "awsRegion": event.region,
        "readOnly": event.read_only,
        "eventID": event.event_id,
        "recipientAccountId": event.account,
        "resources": [{"type": kind, "ARN": name} for kind, name in event.resources],
    }
    return {
        "EventId": event.event_id,
        "EventName": event.event_name,
        "ReadOnly": str(event.read_only).lower(),
        "AccessKeyId": event.access_key_id,
        "EventTime": event.event_time.timestamp(),
        "EventSource": event.event_source,
        "Username": event.username,
        "Resources": [{"ResourceType": k, "ResourceName": n} for k, n in event.resources],
        "CloudTrailEvent": json.dumps(detail),
    }
