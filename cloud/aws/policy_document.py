"""IAM policy documents: the self-expiring grant, its size, and trust principals."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from cloud.base import GrantSpec

POLICY_VERSION = "2012-10-17"
# AWS caps the sum of a role's (or user's) inline policy documents, whitespace not counted.
INLINE_POLICY_BUDGET = 10_240
GRANT_SID = "LeashGrant"
DENY_SID = "LeashDenyPersistence"
EXPIRY_MECHANISM = "aws-inline-policy-with-DateLessThan"

PolicyDocument = dict[str, Any]


def aws_timestamp(moment: datetime) -> str:
    """Format an aware datetime as the UTC `aws:CurrentTime` value (seconds precision)."""
    if moment.tzinfo is None:
        raise ValueError("grant expiry must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def grant_document(spec: GrantSpec) -> PolicyDocument:
    """Build the inline policy that allows `spec.actions` until `spec.expires_at`."""
    condition = {"DateLessThan": {"aws:CurrentTime": aws_timestamp(spec.expires_at)}}
    statements: list[dict[str, Any]] = [
        {
            "Sid": GRANT_SID,
            "Effect": "Allow",
            "Action": list(spec.actions),
            "Resource": list(spec.resources) if spec.resources else "*",
            "Condition": condition,
        }
    ]
    if spec.deny_actions:
        # The deny carries the same expiry so the whole artefact goes inert together.
        statements.append(
            {
                "Sid": DENY_SID,
                "Effect": "Deny",
                "Action": list(spec.deny_actions),
                "Resource": "*",
                "Condition": condition,
            }
        )
    return {"Version": POLICY_VERSION, "Statement": statements}


def compact(document: Mapping[str, Any] | str) -> str:
    """Serialize a policy document without whitespace, as IAM measures it."""
    return json.dumps(decode(document), separators=(",", ":"))


def decode(document: Mapping[str, Any] | str) -> PolicyDocument:
    """Return a policy document as a dict, whether botocore decoded it or not."""
    if isinstance(document, str):
        text = document if document.lstrip().startswith("{") else unquote(document)
        loaded = json.loads(text)
        if not isinstance(loaded, dict):
            raise ValueError("a policy document must be a JSON object")
        return loaded
    return dict(document)


def trust_principals(document: Mapping[str, Any] | str) -> tuple[str, ...]:
    """List the principals a trust policy allows to assume the role, in document order."""
    statements = decode(document).get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    found: list[str] = []
    for statement in statements:
        if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
            continue
        principal = statement.get("Principal")
        if principal == "*":
            found.append("*")
            continue
        if not isinstance(principal, dict):
            continue
        for key in ("Service", "AWS", "Federated"):
            values = principal.get(key, [])
            for value in [values] if isinstance(values, str) else values:
                if value not in found:
                    found.append(str(value))
    return tuple(found)
