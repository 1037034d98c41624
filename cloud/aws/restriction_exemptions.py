"""Rewrite an AWS restriction so approved grants pass through it, each until it expires.

Leash's domain splits the restriction's deny around what live grants approved (see
`bot.domain.restriction_carving`); this writes the result where the restriction lives (inline
`leash-restrict` or the managed `/leash/leash-restrict-<name>`): the split deny, then for each
exemption the same statements the guardrail uses, a deny everywhere but the grant's resources
and a deny there too once the grant has expired (`aws:CurrentTime`), so the restriction is
whole again by itself even if Leash is down.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cloud.aws import inline
from cloud.aws.guardrail.document import exemption_statements
from cloud.aws.inline import MANAGED_POLICY_BUDGET, describe
from cloud.aws.policy_document import POLICY_VERSION, compact
from cloud.aws.restriction import (
    INLINE,
    MANAGED,
    RESTRICT_SID,
    SNAPSHOT_KIND,
    RestrictionHeld,
    is_action_pattern,
    read_restriction,
    transition,
)
from cloud.base import CloudError, CloudLimitError, Exemption, IdentityRef, Snapshot

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

EXEMPTION_SID_PREFIX = "LeashRestrictAfter"


def exempted_document(
    deny: Sequence[str], exemptions: Sequence[Exemption], *, now: datetime
) -> str:
    """The restriction denying `deny`, and each live exemption's action off its grant."""
    malformed = sorted(
        {a for a in [*deny, *(e.action for e in exemptions)] if not is_action_pattern(a)}
    )
    if malformed:
        raise CloudError(f"not IAM actions: {', '.join(malformed)}", code="BadAction")
    statements: list[dict[str, Any]] = []
    if deny:
        statements.append(
            {"Sid": RESTRICT_SID, "Effect": "Deny", "Action": list(deny), "Resource": "*"}
        )
    by_action: dict[str, list[Exemption]] = {}
    for exemption in exemptions:
        if exemption.expires_at > now:
            by_action.setdefault(exemption.action.lower(), []).append(exemption)
        else:  # ended: denied again in full
            statements.append(
                {
                    "Sid": f"{EXEMPTION_SID_PREFIX}Ended{len(statements)}",
                    "Effect": "Deny",
                    "Action": [exemption.action],
                    "Resource": "*",
                }
            )
    for number, key in enumerate(sorted(by_action), start=1):
        group = by_action[key]
        statements += exemption_statements(
            group[0].action, group, f"{EXEMPTION_SID_PREFIX}{number}"
        )
    return compact({"Version": POLICY_VERSION, "Statement": statements})


def rewrite(
    iam: IAMClient,
    identity: IdentityRef,
    snapshot: Snapshot,
    deny: Sequence[str],
    exemptions: Sequence[Exemption],
    *,
    now: datetime,
) -> bool:
    """Write the exempted restriction where `restrict` put it; False when it is gone."""
    mechanism = snapshot.get("mechanism")
    if snapshot.get("kind") != SNAPSHOT_KIND or mechanism not in (INLINE, MANAGED):
        raise CloudError(f"not an AWS restriction snapshot: {dict(snapshot)!r}", code="BadSnapshot")
    document = exempted_document(deny, exemptions, now=now)
    reading = read_restriction(iam, identity)
    current = reading.current
    if (current.inline if mechanism == INLINE else current.managed) is None:
        return False
    if mechanism == INLINE:
        budget = inline.inline_budget(identity)
        size = reading.other_inline_size() + len(document)
        if size > budget:
            raise CloudLimitError(
                f"letting the grant through the restriction of {describe(identity)} needs "
                f"{size} characters of inline policy, over the AWS budget of {budget}",
                code="InlinePolicyBudget",
            )
        wanted = RestrictionHeld(document, None)
    else:
        if len(document) > MANAGED_POLICY_BUDGET:
            raise CloudLimitError(
                f"letting the grant through the restriction of {describe(identity)} needs "
                f"{len(document)} characters, over the {MANAGED_POLICY_BUDGET} a managed "
                "policy holds",
                code="ManagedPolicyBudget",
            )
        wanted = RestrictionHeld(None, document)
    if wanted == current:
        return True
    transition(iam, identity, reading, wanted)
    return True
