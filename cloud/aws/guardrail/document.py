"""The guardrail document: a deny of the guarded actions, exemptions scoped to each grant.

Each exemption denies its action everywhere but the grant's resources (`NotResource`), and on
those again after the grant's expiry (`DateGreaterThan aws:CurrentTime`), so the deny resumes by
itself even if Leash is down. The last statements stop the identity from tagging or untagging
itself and from changing `leash:*` tags anywhere, in any letter case. Built deterministically:
the same inputs give the same document.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from cloud.aws.policy_document import POLICY_VERSION, PolicyDocument, aws_timestamp
from cloud.aws.restriction import is_action_pattern
from cloud.base import CloudError, Exemption, IdentityRef

GUARDRAIL_SID = "LeashGuardrail"
EXEMPTION_SID_PREFIX = "LeashGuardrailAfter"
PROTECT_TAGS_SID = "LeashProtectLeashTags"
PROTECT_SELF_SID = "LeashProtectOwnTags"
TAG_ACTIONS = ("iam:TagRole", "iam:TagUser", "iam:UntagRole", "iam:UntagUser")
# IAM compares tag keys case-insensitively but StringLike does not: every spelling of leash:.
LEASH_TAG_KEYS = sorted(
    {
        "".join(c.upper() if bit & (1 << i) else c for i, c in enumerate("leash")) + ":*"
        for bit in range(32)
    }
)


def _ordered(actions: Sequence[str]) -> list[str]:
    return sorted(actions, key=lambda action: (action.lower(), action))


def _live_exemptions(
    guarded: dict[str, str], exemptions: Sequence[Exemption], now: datetime
) -> dict[str, list[Exemption]]:
    """Return, per guarded action (lower case), the exemptions still running at `now`."""
    live: dict[str, list[Exemption]] = {}
    for exemption in exemptions:
        if exemption.expires_at.tzinfo is None:
            raise CloudError(
                f"exemption of {exemption.action} (grant {exemption.grant_id}) has a naive expiry",
                code="BadInput",
            )
        key = exemption.action.lower()
        if key not in guarded or exemption.expires_at <= now:
            continue  # not guarded, or expired: folded back into the main deny
        live.setdefault(key, []).append(exemption)
    return live


def _exempt_until(exemptions: Sequence[Exemption]) -> tuple[datetime | None, dict[str, datetime]]:
    """When the exemption of any resource ends, and of each named resource (if later)."""
    anywhere = max((e.expires_at for e in exemptions if "*" in e.resources), default=None)
    named: dict[str, datetime] = {}
    for exemption in exemptions:
        for resource in exemption.resources:
            if resource != "*" and (
                resource not in named or named[resource] < exemption.expires_at
            ):
                named[resource] = exemption.expires_at
    if anywhere is not None:
        named = {r: at for r, at in named.items() if at > anywhere}
    return anywhere, named


def exemption_statements(
    action: str, exemptions: Sequence[Exemption], sid: str
) -> list[dict[str, Any]]:
    """Deny `action` everywhere but the grants' resources, and there once the grants end.

    Resources an exemption names are let through until the latest grant naming them ends;
    an exemption of "*" lets every resource through until it ends. Every statement is a
    Deny: the identity's own policies still decide whether the action is allowed at all.
    """
    anywhere, named = _exempt_until(exemptions)
    statements: list[dict[str, Any]] = []
    by_expiry: dict[str, list[str]] = {}
    for resource, until in named.items():
        by_expiry.setdefault(aws_timestamp(until), []).append(resource)
    everywhere_else: dict[str, Any] = {"NotResource": sorted(named)} if named else {"Resource": "*"}
    if anywhere is None:
        statements.append({"Sid": sid, "Effect": "Deny", "Action": [action], **everywhere_else})
    else:
        statements.append(
            {
                "Sid": sid,
                "Effect": "Deny",
                "Action": [action],
                **everywhere_else,
                "Condition": {"DateGreaterThan": {"aws:CurrentTime": aws_timestamp(anywhere)}},
            }
        )
    for number, (expiry, resources) in enumerate(sorted(by_expiry.items()), start=1):
        statements.append(
            {
                "Sid": f"{sid}R{number}",
                "Effect": "Deny",
                "Action": [action],
                "Resource": sorted(resources),
                "Condition": {"DateGreaterThan": {"aws:CurrentTime": expiry}},
            }
        )
    return statements


def guardrail_document(
    actions: Sequence[str],
    exemptions: Sequence[Exemption],
    *,
    now: datetime,
    identity: IdentityRef | None = None,
) -> PolicyDocument:
    """Build the guardrail policy for `actions` with the exemptions still running at `now`.

    With `identity`, the identity may not tag or untag itself at all (its owner, team and
    agent marker are tags Leash reads, and IAM compares tag keys in any case).
    """
    malformed = sorted(action for action in actions if not is_action_pattern(action))
    if malformed:
        raise CloudError(f"not IAM actions: {', '.join(malformed)}", code="BadAction")
    if now.tzinfo is None:
        raise CloudError("the guardrail clock must be timezone-aware", code="BadInput")
    guarded: dict[str, str] = {}
    for action in actions:
        guarded.setdefault(action.lower(), action)
    live = _live_exemptions(guarded, exemptions, now)
    statements: list[dict[str, Any]] = []
    denied = _ordered([action for key, action in guarded.items() if key not in live])
    if denied:
        statements.append(
            {"Sid": GUARDRAIL_SID, "Effect": "Deny", "Action": denied, "Resource": "*"}
        )
    sids: set[str] = set()
    for key in sorted(live, key=lambda k: guarded[k]):
        first = min(live[key], key=lambda e: e.grant_id)
        statements += exemption_statements(
            guarded[key], live[key], _unique_sid(first.grant_id, sids)
        )
    if identity is not None:
        statements.append(
            {
                "Sid": PROTECT_SELF_SID,
                "Effect": "Deny",
                "Action": list(TAG_ACTIONS),
                "Resource": identity.native_id,
            }
        )
    statements.append(
        {
            "Sid": PROTECT_TAGS_SID,
            "Effect": "Deny",
            "Action": list(TAG_ACTIONS),
            "Resource": "*",
            "Condition": {"ForAnyValue:StringLike": {"aws:TagKeys": LEASH_TAG_KEYS}},
        }
    )
    return {"Version": POLICY_VERSION, "Statement": statements}


def _unique_sid(grant_id: str, taken: set[str]) -> str:
    """Return `LeashGuardrailAfter<grant id, alphanumeric>`, numbered if already taken."""
    base = EXEMPTION_SID_PREFIX + "".join(c for c in grant_id if c.isascii() and c.isalnum())
    sid, number = base, 1
    while sid in taken:  # IAM wants statement ids unique within a policy
        number += 1
        sid = f"{base}{number}"
    taken.add(sid)
    return sid
