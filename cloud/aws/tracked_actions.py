"""What IAM Access Advisor can and cannot see, and how its report is judged (pure).

Access Advisor reports the last use of every service a principal's policies allow and, for the
services it tracks at action level, of their *management* actions (IAM User Guide, "Refine
permissions in AWS using last accessed information" and "IAM action last accessed information
services and actions"; action level began with S3 management actions, then EC2, IAM and
Lambda, and now covers 140+ services). Two kinds of action never appear at action level:

- data-plane actions (those CloudTrail logs as *data events*: S3 object operations, Lambda
  invocations, DynamoDB item operations, SQS messages, SageMaker endpoint invocations, Bedrock
  knowledge-base retrieval): their use shows only as use of the service;
- permissions that are not API calls at all (`iam:PassRole` is checked when another service is
  handed a role): not even the service's last use reflects them.

The tables hold the common ones; an action missing here that AWS does not track is still
handled safely, as unknown, because only actions Access Advisor lists are ever judged unused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING

from cloud.base import IdentityRef, UsageReport, UsageStatus

if TYPE_CHECKING:
    from mypy_boto3_iam.type_defs import ServiceLastAccessedTypeDef

# Permissions checked without an API call of their own: invisible even at service level.
_PERMISSION_ONLY = ("iam:PassRole",)
PERMISSION_ONLY_ACTIONS = frozenset(action.lower() for action in _PERMISSION_ONLY)

# Data-plane actions: their use counts for the service, never for the action.
_DATA_PLANE = (
    "s3:AbortMultipartUpload",
    "s3:DeleteObject",
    "s3:DeleteObjectTagging",
    "s3:DeleteObjectVersion",
    "s3:GetObject",
    "s3:GetObjectAcl",
    "s3:GetObjectAttributes",
    "s3:GetObjectTagging",
    "s3:GetObjectVersion",
    "s3:ListBucket",
    "s3:ListBucketMultipartUploads",
    "s3:ListBucketVersions",
    "s3:ListMultipartUploadParts",
    "s3:PutObject",
    "s3:PutObjectAcl",
    "s3:PutObjectTagging",
    "s3:RestoreObject",
    "lambda:InvokeAsync",
    "lambda:InvokeFunction",
    "lambda:InvokeFunctionUrl",
    "dynamodb:BatchGetItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:DeleteItem",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:UpdateItem",
    "sqs:ChangeMessageVisibility",
    "sqs:DeleteMessage",
    "sqs:ReceiveMessage",
    "sqs:SendMessage",
    "sagemaker:InvokeEndpoint",
    "sagemaker:InvokeEndpointAsync",
    "bedrock:InvokeAgent",
    "bedrock:InvokeFlow",
    "bedrock:Retrieve",
    "bedrock:RetrieveAndGenerate",
)
DATA_PLANE_ACTIONS = frozenset(action.lower() for action in _DATA_PLANE)


def service_of(pattern: str) -> str:
    """Return the (lower-case) service part of an action pattern, `*` for a bare `*`."""
    return pattern.split(":", 1)[0].lower() if ":" in pattern else pattern.lower()


def is_wildcard(pattern: str) -> bool:
    """Say whether an action pattern stands for more than one action."""
    return "*" in pattern or "?" in pattern


def permission_only(action: str) -> bool:
    """Say whether an exact action is a permission Access Advisor never sees used."""
    return action.lower() in PERMISSION_ONLY_ACTIONS


def action_level_untracked(action: str) -> bool:
    """Say whether an exact action is one Access Advisor never reports at action level."""
    lowered = action.lower()
    return lowered in PERMISSION_ONLY_ACTIONS or lowered in DATA_PLANE_ACTIONS


def untracked_within(pattern: str) -> tuple[str, ...]:
    """The actions known to be invisible at action level that a one-service pattern covers.

    `s3:*` on a service Access Advisor tracks is judged by its tracked actions; what is left
    unknown is its data-plane part (`s3:GetObject`, `s3:PutObject`, …), not the whole `s3:*`.
    """
    return tuple(a for a in (*_PERMISSION_ONLY, *_DATA_PLANE) if matches(pattern, a))


def matches(pattern: str, action: str) -> bool:
    """Say whether an IAM action pattern (`*` and `?` wildcards, any case) covers `action`."""
    if pattern == "*":
        return True
    return _compiled(pattern.lower()).fullmatch(action.lower()) is not None


def covers_service(pattern: str, namespace: str) -> bool:
    """Say whether an action pattern can allow any action of the service `namespace`."""
    if pattern == "*":
        return True
    return _compiled(service_of(pattern)).fullmatch(namespace.lower()) is not None


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern[str]:
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts))


def assess(
    identity: IdentityRef,
    *,
    since: datetime,
    granted: Sequence[str],
    services: Sequence[ServiceLastAccessedTypeDef],
    last_used: Sequence[datetime] = (),
    notes: Sequence[str] = (),
) -> UsageReport:
    """Sort each granted pattern into used, not used and unknown from Access Advisor's services.

    A service unused since `since` is `service:*`; a used service's tracked actions are judged
    one by one, those a one-service wildcard covers included (`s3:*` is judged by the tracked
    S3 actions, and only its known untracked actions, such as `s3:GetObject`, are unknown);
    what Access Advisor cannot see (untracked actions, patterns over several services, services
    reported only as a whole) is unknown.
    """
    assessment = _Assessment(since)
    by_namespace = {service["ServiceNamespace"].lower(): service for service in services}
    # A pattern over every service ("*", "*:Get*") is judged per service, never as a whole.
    assessment.unknown.update(p for p in granted if ":" not in p or is_wildcard(service_of(p)))
    unreported = sorted(
        {p for p in granted if ":" in p and not is_wildcard(service_of(p))}
        - {p for p in granted if service_of(p) in by_namespace}
    )
    assessment.unknown.update(unreported)
    for namespace, service in sorted(by_namespace.items()):
        mine = [pattern for pattern in granted if covers_service(pattern, namespace)]
        if mine:
            assessment.service(namespace, service, mine)
    moments = [*last_used, *(s["LastAuthenticated"] for s in services if "LastAuthenticated" in s)]
    all_notes = [*notes]
    if unreported:
        all_notes.append(f"not reported by Access Advisor: {', '.join(unreported)}")
    return UsageReport(
        identity=identity,
        status=UsageStatus.SERVICE_LEVEL if assessment.service_level else UsageStatus.COMPLETE,
        since=since,
        granted=tuple(sorted(set(granted))),
        used=dict(sorted(assessment.used.items())),
        not_used=tuple(sorted(assessment.not_used)),
        unknown=tuple(sorted(assessment.unknown)),
        last_activity_at=max(moments, default=None),
        note="; ".join(all_notes),
    )


class _Assessment:
    """The running verdicts of `assess`, one service at a time."""

    def __init__(self, since: datetime) -> None:
        self.since = since
        self.used: dict[str, datetime] = {}
        self.not_used: set[str] = set()
        self.unknown: set[str] = set()
        self.service_level = False

    def service(
        self, namespace: str, service: ServiceLastAccessedTypeDef, patterns: Sequence[str]
    ) -> None:
        # Patterns naming many services were put in unknown whole; here they act for this one.
        local = {
            pattern: pattern if not is_wildcard(service_of(pattern)) else _localize(pattern)
            for pattern in patterns
        }
        last = service.get("LastAuthenticated")
        if last is None or last < self.since:
            self._unused_service(namespace, local)
            return
        tracked = service.get("TrackedActionsLastAccessed")
        if tracked is None:
            self.used[f"{namespace}:*"] = last
            self.unknown.update(p for p, mine in local.items() if p == mine)
            if any(
                is_wildcard(mine) or not action_level_untracked(mine) for mine in local.values()
            ):
                self.service_level = True
            return
        actions = {
            f"{namespace}:{entry['ActionName']}": entry.get("LastAccessedTime")
            for entry in tracked
            if entry.get("ActionName")
        }
        by_lower = {name.lower(): name for name in actions}
        for original, mine in local.items():
            local_pattern = f"{namespace}:{mine.split(':', 1)[1]}" if ":" in mine else mine
            if is_wildcard(local_pattern):
                for name, when in actions.items():
                    if matches(local_pattern, name):
                        self._judge(name, when)
                if original == mine:  # what is left unknown: its untracked actions
                    tracked_names = {name.lower() for name in actions}
                    self.unknown.update(
                        a for a in untracked_within(original) if a.lower() not in tracked_names
                    )
            elif (exact := by_lower.get(local_pattern.lower())) is not None:
                self._judge(exact, actions[exact])
            else:
                self.unknown.add(original)
        if not any(action.startswith(f"{namespace}:") for action in self.used):
            self.used[f"{namespace}:*"] = last

    def _unused_service(self, namespace: str, local: Mapping[str, str]) -> None:
        invisible = [
            p for p, mine in local.items() if not is_wildcard(mine) and permission_only(mine)
        ]
        self.unknown.update(invisible)
        if len(invisible) < len(local):
            self.not_used.add(f"{namespace}:*")

    def _judge(self, action: str, when: datetime | None) -> None:
        if when is not None and when >= self.since:
            self.used[action] = max(when, self.used.get(action, when))
        else:
            self.not_used.add(action)


def _localize(pattern: str) -> str:
    """Turn a pattern over many services into its action part for one service (`*` stays)."""
    return f"*:{pattern.split(':', 1)[1]}" if ":" in pattern else "*:*"
