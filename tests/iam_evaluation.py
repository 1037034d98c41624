"""An evaluator of AWS's documented identity-policy logic, written apart from Leash's own code.

It follows the IAM policy evaluation logic for one principal's identity-based policies
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html):
an explicit Deny in any statement wins; otherwise an Allow allows; otherwise the request is
implicitly denied. Action and NotAction match case-insensitively with `*` and `?`;
Resource and NotResource match case-sensitively with `*` and `?`; a statement applies only
when every condition operator holds, and every key within an operator (values of one key:
any of them). Operators Leash does not use raise, so a test cannot pass by ignoring one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

Document = Mapping[str, Any]


class Decision(StrEnum):
    ALLOW = "Allow"
    EXPLICIT_DENY = "ExplicitDeny"
    IMPLICIT_DENY = "ImplicitDeny"


@dataclass(frozen=True)
class Request:
    """One API call as IAM evaluates it: the action, the resource and the context keys."""

    action: str
    resource: str
    current_time: datetime
    token_issue_time: datetime | None = None
    tag_keys: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    def values(self, key: str) -> list[Any] | None:
        lowered = key.lower()
        if lowered == "aws:currenttime":
            return [self.current_time]
        if lowered == "aws:tokenissuetime":
            return [self.token_issue_time] if self.token_issue_time else None
        if lowered == "aws:tagkeys":
            return list(self.tag_keys) if self.tag_keys else None
        found = {k.lower(): v for k, v in self.extra.items()}.get(lowered)
        return None if found is None else list(found if isinstance(found, list) else [found])


def _listed(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _wildcard(pattern: str, text: str, *, ignore_case: bool) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, text, flags=re.IGNORECASE if ignore_case else 0) is not None


def _time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _string_matches(value: Any, patterns: Sequence[Any], *, like: bool) -> bool:
    return any(
        _wildcard(str(p), str(value), ignore_case=False) if like else str(value) == str(p)
        for p in patterns
    )


def _operator_holds(operator: str, block: Mapping[str, Any], request: Request) -> bool:
    qualifier, _, name = operator.rpartition(":")
    for key, wanted in block.items():
        present = request.values(key)
        patterns = _listed(wanted)
        if present is None:
            return False  # a missing key fails every operator Leash uses (no ...IfExists)
        if name in ("DateGreaterThan", "DateLessThan"):
            when = _time(present[0])
            limits = [_time(p) for p in patterns]
            ok = (
                any(when > t for t in limits)
                if name == "DateGreaterThan"
                else any(when < t for t in limits)
            )
        elif name in ("StringLike", "StringEquals", "ArnLike", "ArnEquals"):
            like = name in ("StringLike", "ArnLike")
            matched = [_string_matches(v, patterns, like=like) for v in present]
            if qualifier in ("ForAnyValue", ""):
                ok = any(matched)
            elif qualifier == "ForAllValues":
                ok = all(matched)
            else:
                raise ValueError(f"unsupported qualifier {qualifier}")
        else:
            raise ValueError(f"the evaluator does not know condition operator {operator}")
        if not ok:
            return False
    return True


def _applies(statement: Mapping[str, Any], request: Request) -> bool:
    if "Action" in statement:
        acts = any(
            _wildcard(p, request.action, ignore_case=True) for p in _listed(statement["Action"])
        )
    else:
        acts = not any(
            _wildcard(p, request.action, ignore_case=True) for p in _listed(statement["NotAction"])
        )
    if not acts:
        return False
    if "Resource" in statement:
        on = any(
            _wildcard(p, request.resource, ignore_case=False)
            for p in _listed(statement["Resource"])
        )
    else:
        on = not any(
            _wildcard(p, request.resource, ignore_case=False)
            for p in _listed(statement["NotResource"])
        )
    if not on:
        return False
    conditions = statement.get("Condition") or {}
    return all(_operator_holds(op, block, request) for op, block in conditions.items())


def evaluate(documents: Iterable[Document | str], request: Request) -> Decision:
    """Decide one request against every identity policy of one principal."""
    allowed = False
    for raw in documents:
        document = json.loads(raw) if isinstance(raw, str) else raw
        for statement in _listed(document["Statement"]):
            if not _applies(statement, request):
                continue
            if statement["Effect"] == "Deny":
                return Decision.EXPLICIT_DENY
            allowed = True
    return Decision.ALLOW if allowed else Decision.IMPLICIT_DENY


def role_documents(iam: Any, role: str) -> list[Document]:
    """Every identity policy of a role as IAM returns it: inline, and attached managed ones."""
    found: list[Document] = []
    for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        raw = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        found.append(json.loads(raw) if isinstance(raw, str) else raw)
    for attached in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
        arn = attached["PolicyArn"]
        version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
        raw = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
        found.append(json.loads(raw) if isinstance(raw, str) else raw)
    return found


def decisions(
    documents: Sequence[Document], requests: Mapping[str, Request]
) -> dict[str, Decision]:
    """Evaluate several named requests at once (readable assertions)."""
    return {name: evaluate(documents, request) for name, request in requests.items()}
