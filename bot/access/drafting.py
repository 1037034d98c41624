"""Turning what a requester typed or posted into a validated, decided AccessRequest."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.context import new_id
from bot.domain.actors import Actor
from bot.domain.catalog import action_refusal, is_valid_action, normalize_action
from bot.domain.catalog.azure import canonical_role as canonical_azure_role
from bot.domain.catalog.azure import is_role as is_azure_role
from bot.domain.catalog.azure import is_scope as is_azure_scope
from bot.domain.catalog.gcp import is_role
from bot.domain.errors import (
    DurationTooLongError,
    InvalidDurationError,
    InvalidInputError,
    LeashError,
    NotAllowedError,
    UnknownPermissionSetError,
)
from bot.domain.policy import Decision, Draft, Owners, decide
from bot.domain.restriction_carving import opened, uncarvable
from bot.domain.rules import Rules
from bot.domain.states import ActorKind, EnforcementKind, Tier
from bot.domain.text_safety import refusal
from bot.inventory import registry
from bot.store.tables import AccessRequest, Enforcement, Identity, Ownership
from cloud.base import Resolution

# Asks the identity's cloud what the actions or roles carry (`CloudProvider.resolve`).
Resolver = Callable[[Identity, tuple[str, ...]], Awaitable[Resolution]]

MAX_REASON = 1000
MAX_ITEMS = 50
_RESOURCE = re.compile(
    r"(\*|arn:[a-z0-9*\-]+:[a-z0-9*\-]*:[a-z0-9*\-]*:[0-9*]{0,12}:[^\s]{1,1500})"
)


@dataclass(frozen=True, slots=True)
class RequestInput:
    """A request as typed or posted, before validation."""

    identity: str
    duration: timedelta
    reason: str
    permission_set: str | None = None
    actions: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    extends_grant_id: str | None = None


async def draft_request(
    data: RequestInput,
    *,
    actor: Actor,
    rules: Rules,
    now: datetime,
    session: AsyncSession,
    resolve: Resolver,
    also_requesters: frozenset[str] = frozenset(),
) -> tuple[Identity, AccessRequest]:
    """Validate a request, let the policy decide, and return the row to store (not yet added).

    What is asked is resolved by the identity's cloud first (`resolve`): the tier is decided on
    the permissions each action or role carries, and anything the cloud cannot resolve is
    refused. `also_requesters` are people who count as having asked (an extended grant's
    requester): they are never among its approvers.
    """
    reason = _checked_reason(data)
    identity = await _requestable(data.identity, actor=actor, session=session)
    actions, resources, forced = planned_permissions(data, rules, provider=identity.provider)
    resolution = await _resolved(identity, actions, resolve)
    actions = tuple(dict.fromkeys(item.name for item in resolution.items)) or actions
    through = await _through_the_restriction(identity, resolution, session=session)
    decision = decide(
        Draft(
            identity_name=identity.name,
            requester=actor.name,
            requester_kind=actor.kind,
            actions=actions,
            duration=data.duration,
            permission_set=data.permission_set,
            forced_tier=forced,
            requester_keys=actor.keys | also_requesters,
            resolved=resolution.items,
        ),
        owners=await _owners(identity, session=session),
        rules=rules,
    )
    _refuse_if_refused(decision, data.duration, rules)
    request = AccessRequest(
        id=new_id("r"),
        identity_id=identity.id,
        requester=actor.name,
        requester_kind=actor.kind,
        requester_handles=sorted(actor.keys),
        origin=actor.origin,
        permission_set=data.permission_set,
        actions=list(actions),
        resources=list(resources),
        duration_seconds=int(data.duration.total_seconds()),
        reason=reason,
        tier=decision.tier,
        approvals_required=decision.approvals_required,
        approvers=list(decision.approvers),
        decision_reasons=[*decision.reasons, *([through] if through else [])],
        extends_grant_id=data.extends_grant_id,
        created_at=now,
        decide_by=now + rules.requests.decide_within,
    )
    return identity, request


def _checked_reason(data: RequestInput) -> str:
    """Refuse unsafe text in any field, then a missing or overlong reason."""
    _refuse_unsafe_text(data)
    reason = " ".join(data.reason.split())
    if not reason:
        raise InvalidInputError(
            "Say why you need it: `because <reason>` is required.", field="reason"
        )
    if len(reason) > MAX_REASON:
        raise InvalidInputError(
            f"The reason is longer than {MAX_REASON} characters.", field="reason"
        )
    return reason


async def _requestable(reference: str, *, actor: Actor, session: AsyncSession) -> Identity:
    """The identity asked for, if this actor may ask for it and it is not quarantined."""
    try:
        identity = await registry.resolve(reference, session=session)
    except LeashError as error:
        error.field = "identity"
        raise
    if actor.kind is ActorKind.AGENT and actor.name != identity.id:
        raise NotAllowedError(
            "An agent token can request access only for its own identity.", field="identity"
        )
    quarantined = await session.exec(
        select(Enforcement.id).where(
            col(Enforcement.active_key) == f"{identity.id}|{EnforcementKind.QUARANTINE}"
        )
    )
    if quarantined.first() is not None:
        raise NotAllowedError(
            f"{identity.name} is quarantined: no access can be granted until it is released.",
            field="identity",
        )
    return identity


async def _resolved(identity: Identity, actions: tuple[str, ...], resolve: Resolver) -> Resolution:
    """What the cloud says the actions or roles carry; refused if it cannot resolve any."""
    resolution = await resolve(identity, actions)
    if resolution.unresolved:
        raise InvalidInputError(
            " ".join(
                f"{asked.strip()[:120]}: {why}." for asked, why in resolution.unresolved.items()
            )
            + " Leash decides who approves from what a role carries, so it grants only what "
            "the cloud resolves.",
            field="permissions",
        )
    return resolution


async def _owners(identity: Identity, *, session: AsyncSession) -> Owners:
    ownership = await session.get(Ownership, identity.id)
    return Owners(
        primary=ownership.primary_owner if ownership else None,
        backup=ownership.backup_owner if ownership else None,
        proposed=ownership.proposed_owner if ownership else None,
    )


def _refuse_if_refused(decision: Decision, duration: timedelta, rules: Rules) -> None:
    """Raise the policy's refusal, as the error of the field at fault."""
    if decision.refusal is None:
        return
    if duration > decision.max_duration:
        raise DurationTooLongError(decision.refusal, field="duration")
    if duration < rules.grants.min_duration:
        raise InvalidDurationError(decision.refusal, field="duration")
    raise NotAllowedError(decision.refusal, field="identity")


async def _through_the_restriction(
    identity: Identity, resolution: Resolution, *, session: AsyncSession
) -> str | None:
    """What an active restriction means for a grant of these actions: a line for the card.

    On AWS what the grant approves is let through the restriction on the grant's resources
    until it ends (`restriction_carving`); an overlap that cannot be carved is refused now, so
    nobody approves a grant its restriction would cancel. On Google Cloud a role carrying a
    permission the restriction's deny policy denies is refused the same way.
    """
    restriction = (
        await session.exec(
            select(Enforcement).where(
                col(Enforcement.active_key) == f"{identity.id}|{EnforcementKind.RESTRICT}"
            )
        )
    ).first()
    if restriction is None or not restriction.actions:
        return None
    undo = f"Its owner can `unrestrict {identity.name}` first, or ask for other actions."
    if identity.provider == "gcp":
        denied = set(restriction.actions)
        blocked = sorted({p for item in resolution.items for p in item.permissions if p in denied})
        if blocked:
            raise NotAllowedError(
                f"{identity.name} is restricted, and its restriction denies "
                f"{', '.join(blocked[:5])}: a grant of it would be cancelled. {undo}",
                field="permissions",
            )
        return None
    if identity.provider != "aws":
        return None  # an Azure restriction only removes assignments; a grant adds its own
    asked = [item.name for item in resolution.items]
    stuck = uncarvable(restriction.actions, asked)
    if stuck:
        raise NotAllowedError(
            f"{identity.name} is restricted, and its restriction denies "
            f"{', '.join(stuck[:5])} in a way Leash cannot open for one grant: it would be "
            f"cancelled. {undo}",
            field="permissions",
        )
    passing = opened(restriction.actions, asked)
    if not passing:
        return None
    return (
        f"{identity.name} is restricted: the grant lets {', '.join(passing[:5])} through its "
        "restriction on the grant's resources until it ends, then the restriction is whole "
        "again by itself"
    )


_SET_FIELD = {"gcp": "gcp_roles", "azure": "azure_roles"}


def _azure_roles(roles: tuple[str, ...]) -> tuple[str, ...]:
    """Azure grants are role assignments, by role name or role definition id.

    A built-in role in any spelling (case, spaces, a role definition id at any scope, the bare
    GUID) becomes its one name here; any other role (custom, or misspelt) is kept as typed for
    the cloud to resolve, and the request is refused if it cannot.
    """
    if len(roles) > MAX_ITEMS:
        raise InvalidInputError(f"At most {MAX_ITEMS} roles.", field="permissions")
    bad = [r for r in roles if not is_azure_role(r)]
    if bad:
        raise InvalidInputError(
            f"Not an Azure role: {', '.join(b[:60] for b in bad)} (expected a role name such as "
            '"Storage Blob Data Reader" or a role definition id).',
            field="permissions",
        )
    return tuple(dict.fromkeys(canonical_azure_role(r) or " ".join(r.split()) for r in roles))


def _azure_scopes(resources: tuple[str, ...]) -> tuple[str, ...]:
    """Scopes under a subscription (`/subscriptions/…/resourceGroups/…`); none: all of it."""
    bad = [r for r in resources if not is_azure_scope(r)]
    if bad:
        raise InvalidInputError(
            f"Not an Azure scope: {', '.join(b[:80] for b in bad)} (expected /subscriptions/…).",
            field="resources",
        )
    return tuple(dict.fromkeys(resources))


def _gcp_permissions(roles: tuple[str, ...], resources: tuple[str, ...]) -> tuple[str, ...]:
    """Google Cloud grants are project-level bindings of roles (resources are not scoped yet)."""
    if len(roles) > MAX_ITEMS:
        raise InvalidInputError(f"At most {MAX_ITEMS} roles.", field="permissions")
    bad = [r for r in roles if not is_role(r)]
    if bad:
        raise InvalidInputError(
            f"Not a GCP role: {', '.join(b[:60] for b in bad)} (expected roles/… on Google "
            "Cloud, e.g. roles/storage.objectViewer).",
            field="permissions",
        )
    if resources:
        raise InvalidInputError(
            "On Google Cloud, Leash grants roles on the identity's project; leave out `on …`.",
            field="resources",
        )
    return tuple(dict.fromkeys(roles))


def planned_permissions(
    data: RequestInput, rules: Rules, *, provider: str
) -> tuple[tuple[str, ...], tuple[str, ...], Tier | None]:
    forced: Tier | None = None
    if data.permission_set is not None:
        permission_set = rules.permission_sets.get(data.permission_set)
        if permission_set is None:
            known = ", ".join(sorted(rules.permission_sets)) or "none configured"
            raise UnknownPermissionSetError(
                f"There is no permission set '{data.permission_set[:60]}' (known: {known}).",
                field="permissions",
            )
        actions = permission_set.for_provider(provider)
        if not actions:
            raise InvalidInputError(
                f"Permission set '{data.permission_set}' names nothing for {provider.upper()}: "
                f"add {_SET_FIELD.get(provider, 'actions')} to it in the policy.",
                field="permissions",
            )
        resources = data.resources or permission_set.resources
        forced = permission_set.tier
    else:
        actions, resources = data.actions, data.resources
    if not actions:
        raise InvalidInputError(
            "Name a permission set or at least one action.", field="permissions"
        )
    if provider == "gcp":
        return _gcp_permissions(actions, resources), (), forced
    if provider == "azure":
        return _azure_roles(actions), _azure_scopes(resources), forced
    if len(actions) > MAX_ITEMS:
        raise InvalidInputError(f"At most {MAX_ITEMS} actions.", field="permissions")
    if len(resources) > MAX_ITEMS:
        raise InvalidInputError(f"At most {MAX_ITEMS} resources.", field="resources")
    bad = [a for a in actions if not is_valid_action(a)]
    if bad:
        raise InvalidInputError(
            f"Not an action: {', '.join(b[:60] for b in bad)} (expected service:Action).",
            field="permissions",
        )
    # Then against AWS's own action data: a misspelt action would be granted as typed, match
    # nothing in the catalogue and so look harmless (tier normal) while granting nothing.
    unknown = [r for r in (action_refusal(a) for a in actions) if r is not None]
    if unknown:
        raise InvalidInputError(" ".join(unknown), field="permissions")
    bad = [r for r in resources if not _RESOURCE.fullmatch(r)]
    if bad:
        raise InvalidInputError(
            f"Not a resource ARN: {', '.join(b[:80] for b in bad)}.", field="resources"
        )
    normalized = tuple(dict.fromkeys(normalize_action(a) for a in actions))
    return normalized, tuple(dict.fromkeys(resources)), forced


def _refuse_unsafe_text(data: RequestInput) -> None:
    """Refuse control and text-direction characters in any field, whichever surface sent it.

    Commands are checked as they are parsed; forms and the API arrive here field by field.
    """
    fields = {
        "identity": (data.identity,),
        "permission_set": (data.permission_set or "",),
        "actions": data.actions,
        "resources": data.resources,
        "reason": (data.reason,),
    }
    for field, texts in fields.items():
        unsafe = refusal("".join(texts), f"The {field.replace('_', ' ')}", prose=field == "reason")
        if unsafe is not None:
            raise InvalidInputError(unsafe, field=field)
