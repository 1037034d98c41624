"""The guardrail: an IAM deny policy of privileged permissions, one per service account.

`leash-guardrail-<hash of the e-mail>` on the account's project denies it every guarded
GCP permission except those an unexpired exemption lets through. Entries of `actions` that
are not GCP permission names (another cloud's `iam:PassRole`, say) are skipped, so one mixed
catalogue can be handed to every provider. Deny conditions cannot test `request.time`, so an
exemption ends when Leash rewrites the guardrail (the domain does when the grant ends), not
by itself. With nothing left to deny the policy is deleted.

`before` and `after` are the deny rules as compact JSON; a missing policy is `None` before
when one is wanted, and the JSON `null` on both sides when none is wanted, so `changed` says
whether a write is due.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from cloud.base import GUARDRAIL_ARTEFACT, CloudError, Exemption, GuardrailChange, IdentityRef
from cloud.gcp import deny
from cloud.gcp.clients import GcpClients

MECHANISM = "gcp-deny-policy"
ABSENT = "null"


def guardrail_policy_id(identity: IdentityRef) -> str:
    """Name the deny policy that guards one service account."""
    return f"{GUARDRAIL_ARTEFACT}-{deny.short_hash(identity.native_id)}"


def guardrail_display_name(identity: IdentityRef) -> str:
    """Title the guardrail within Google's 63 characters: the account id says whose it is."""
    return deny.display_name("Leash guardrail", deny.account_id(identity.native_id))


def denied_permissions(
    actions: Sequence[str], exemptions: Sequence[Exemption], *, now: datetime
) -> tuple[str, ...]:
    """Return the guarded GCP permissions no unexpired exemption lets through, sorted."""
    if now.tzinfo is None:
        raise CloudError("the guardrail clock must be timezone-aware", code="BadInput")
    guarded = {action for action in actions if deny.is_permission(action)}
    exempt: set[str] = set()
    for exemption in exemptions:
        if exemption.expires_at.tzinfo is None:
            raise CloudError(
                f"exemption of {exemption.action} (grant {exemption.grant_id}) has a naive expiry",
                code="BadInput",
            )
        if exemption.expires_at > now:
            exempt.add(exemption.action)
    return tuple(sorted(guarded - exempt))


def guardrail(
    clients: GcpClients,
    identity: IdentityRef,
    actions: Sequence[str],
    exemptions: Sequence[Exemption],
    *,
    dry_run: bool,
    now: datetime,
) -> GuardrailChange:
    """Write (unless `dry_run` or unchanged) the guardrail; return it before and after."""
    permissions = denied_permissions(actions, exemptions, now=now)
    project = identity.account
    policy_id = guardrail_policy_id(identity)
    rules = (
        [
            deny.DenyRule(
                (deny.principal_of(identity.native_id),),
                tuple(sorted(dict.fromkeys(deny.deny_permission(p) for p in permissions))),
            )
        ]
        if permissions
        else []
    )
    current = deny.get(clients, project, policy_id)
    after = deny.render(rules) if rules else ABSENT
    if current is not None:
        before: str | None = deny.render(current.rules)
    else:
        before = None if rules else ABSENT
    change = GuardrailChange(identity=identity, before=before, after=after, mechanism=MECHANISM)
    if dry_run or before == after:
        return change
    if rules:
        deny.put(
            clients,
            project,
            policy_id,
            display_name=guardrail_display_name(identity),
            rules=rules,
        )
    else:
        deny.delete(clients, project, policy_id)
    return change
