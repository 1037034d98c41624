"""Restrict an AWS role or user: deny its unused actions within IAM's limits, and undo exactly.

The deny lives in the inline policy `leash-restrict` when the identity's inline budget has
room, else in the customer-managed policy `/leash/leash-restrict-<name>`; when neither holds
it, exact actions are grouped into `service:Verb*` (then `service:*`) wildcards that match no
action the identity still needs. The snapshot `restrict` returns records what was there
before, so `unrestrict` puts it back.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cloud.aws import inline
from cloud.aws.inline import MANAGED_POLICY_BUDGET, ManagedPolicy, UndoLog, describe
from cloud.aws.policy_document import POLICY_VERSION, compact
from cloud.base import (
    RESTRICT_ARTEFACT,
    CloudConflictError,
    CloudError,
    CloudLimitError,
    IdentityRef,
    RestrictionPlan,
    Snapshot,
)

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

RESTRICT_SID = "LeashRestrictUnused"
INLINE = "inline"
MANAGED = "managed"
SNAPSHOT_KIND = "aws-restrict"
LEASH_ARTEFACT_PREFIX = "leash-"
_ACTION_PATTERN = re.compile(r"[A-Za-z0-9-]+:[A-Za-z0-9*?]+")
_VERB = re.compile(r"[A-Za-z][a-z]*")


def is_action_pattern(text: str) -> bool:
    """Say whether `text` reads as an IAM action or action pattern (`service:Name*`)."""
    return _ACTION_PATTERN.fullmatch(text) is not None


@functools.lru_cache(maxsize=4096)
def _glob(pattern: str) -> re.Pattern[str]:
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.DOTALL)


def pattern_overlaps(first: str, second: str) -> bool:
    """Say whether some action matches both IAM patterns (case-insensitive, `*` and `?`)."""
    a, b = first.lower(), second.lower()
    if not any(c in b for c in "*?"):  # the usual case: one side is an exact action
        return _glob(a).fullmatch(b) is not None
    if not any(c in a for c in "*?"):
        return _glob(b).fullmatch(a) is not None

    @functools.cache
    def meet(i: int, j: int) -> bool:
        if i == len(a) and j == len(b):
            return True
        if i < len(a) and a[i] == "*":
            return meet(i + 1, j) or (j < len(b) and meet(i, j + 1))
        if j < len(b) and b[j] == "*":
            return meet(i, j + 1) or (i < len(a) and meet(i + 1, j))
        if i < len(a) and j < len(b) and (a[i] == b[j] or "?" in (a[i], b[j])):
            return meet(i + 1, j + 1)
        return False

    return meet(0, 0)


def _ordered(patterns: set[str] | Sequence[str]) -> tuple[str, ...]:
    return tuple(sorted(patterns, key=lambda pattern: (pattern.lower(), pattern)))


def denied_patterns(unused: Sequence[str], keep: Sequence[str]) -> tuple[str, ...]:
    """Return `unused` without any pattern that could match an action in `keep`, sorted."""
    # Only `unused` must be well formed: an odd `keep` entry can only spare more actions.
    malformed = [p for p in unused if not is_action_pattern(p)]
    if malformed:
        raise CloudError(
            f"not IAM action patterns (service:Action): {', '.join(sorted(malformed))}",
            code="BadAction",
        )
    chosen: dict[str, str] = {}
    for pattern in unused:
        if pattern.lower() in chosen or any(pattern_overlaps(pattern, k) for k in keep):
            continue
        chosen[pattern.lower()] = pattern
    return _ordered(list(chosen.values()))


def restrict_document(deny: Sequence[str]) -> str:
    """Return the compact deny policy for `deny`."""
    statement = {"Sid": RESTRICT_SID, "Effect": "Deny", "Action": list(deny), "Resource": "*"}
    return compact({"Version": POLICY_VERSION, "Statement": [statement]})


def _cost(pattern: str) -> int:
    return len(json.dumps(pattern)) + 1  # the quoted string and its comma


def _verb_wildcard(pattern: str) -> str | None:
    service, _, name = pattern.partition(":")
    verb = _VERB.match(name)
    if verb is None or "*" in name or "?" in name:
        return None
    return f"{service}:{verb.group(0)}*"


def _service_wildcard(pattern: str) -> str | None:
    service, _, name = pattern.partition(":")
    return None if name == "*" else f"{service}:*"


def _covered(wildcard: str, patterns: set[str]) -> set[str]:
    prefix = wildcard[:-1].lower()  # every wildcard here is "prefix*"
    return {p for p in patterns if p != wildcard and p.lower().startswith(prefix)}


def coarsenings(deny: Sequence[str], keep: Sequence[str]) -> Iterator[tuple[str, ...]]:
    """Yield ever coarser denies: verb wildcards, then service wildcards, biggest saving first.

    A wildcard is used only when it could match no action in `keep`.
    """
    current = set(deny)
    for level in (_verb_wildcard, _service_wildcard):
        candidates = {w for p in current if (w := level(p)) is not None and w not in current}
        saving = {
            w: sum(_cost(p) for p in _covered(w, current)) - _cost(w)
            for w in candidates
            if not any(pattern_overlaps(w, k) for k in keep)
        }
        for wildcard in sorted(saving, key=lambda w: (-saving[w], w.lower(), w)):
            covered = _covered(wildcard, current)
            if sum(_cost(p) for p in covered) <= _cost(wildcard):
                continue
            current = (current - covered) | {wildcard}
            yield _ordered(current)


@dataclass(frozen=True, slots=True)
class RestrictionHeld:
    """Where a restriction is held: the inline and the managed document (None when absent)."""

    inline: str | None
    managed: str | None


@dataclass(frozen=True, slots=True)
class RestrictionReading:
    documents: dict[str, str]
    attached: list[str]
    arn: str
    existing: ManagedPolicy | None

    @property
    def current(self) -> RestrictionHeld:
        attached = self.existing is not None and self.arn in self.attached
        return RestrictionHeld(
            self.documents.get(RESTRICT_ARTEFACT),
            self.existing.document if attached and self.existing else None,
        )

    def other_inline_size(self) -> int:
        return sum(len(d) for name, d in self.documents.items() if name != RESTRICT_ARTEFACT)


def read_restriction(iam: IAMClient, identity: IdentityRef) -> RestrictionReading:
    documents = inline.documents(iam, identity)
    attached = inline.attached_policies(iam, identity)
    name = inline.artefact_policy_name(RESTRICT_ARTEFACT, identity)
    arn = inline.managed_policy_arn(identity, name)
    return RestrictionReading(documents, attached, arn, inline.get_managed(iam, identity, arn))


def _fingerprint(iam: IAMClient, identity: IdentityRef, reading: RestrictionReading) -> str:
    """Hash the identity's own permissions: inline documents and managed default versions."""
    policies = sorted(
        (name, document)
        for name, document in reading.documents.items()
        if not name.startswith(LEASH_ARTEFACT_PREFIX)
    )
    managed = [
        (arn, inline.default_version(iam, identity, arn))
        for arn in sorted(reading.attached)
        if not inline.is_leash_policy(arn)
    ]
    payload = json.dumps({"inline": policies, "managed": managed}, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


def plan_restriction(
    iam: IAMClient, identity: IdentityRef, unused: Sequence[str], keep: Sequence[str]
) -> RestrictionPlan:
    """Work out the deny of `unused` that matches nothing in `keep` and fits IAM's limits."""
    deny = denied_patterns(unused, keep)
    if not deny:
        raise CloudError(
            f"nothing to restrict on {describe(identity)}: every unused action given "
            "matches one that is used or not tracked",
            code="NothingToRestrict",
        )
    reading = read_restriction(iam, identity)
    fingerprint = _fingerprint(iam, identity, reading)
    room = inline.inline_budget(identity) - reading.other_inline_size()
    smallest = 0
    for step, candidate in enumerate((deny, *coarsenings(deny, keep))):
        document = restrict_document(candidate)
        smallest = len(document)
        mechanism = (
            INLINE if smallest <= room else MANAGED if smallest <= MANAGED_POLICY_BUDGET else None
        )
        if mechanism is not None:
            return RestrictionPlan(
                identity, candidate, mechanism, document, fingerprint, coarsened=step > 0
            )
    raise CloudLimitError(
        f"cannot restrict {describe(identity)}: denying {len(deny)} unused action(s) needs "
        f"{smallest} characters even grouped into wildcards that spare the used ones, but its "
        f"inline policies have {max(room, 0)} left and a managed policy holds "
        f"{MANAGED_POLICY_BUDGET}",
        code="RestrictionTooLarge",
    )


def restrict(iam: IAMClient, identity: IdentityRef, plan: RestrictionPlan) -> Snapshot:
    """Write the planned deny, replacing an earlier one; return how to undo it."""
    target = (identity.account, identity.kind, identity.name)
    if (plan.identity.account, plan.identity.kind, plan.identity.name) != target:
        raise CloudError(
            f"the restriction plan for {describe(plan.identity)} cannot be applied to "
            f"{describe(identity)}",
            code="PlanMismatch",
        )
    reading = read_restriction(iam, identity)
    if _fingerprint(iam, identity, reading) != plan.fingerprint:
        raise CloudConflictError(
            f"the permissions of {describe(identity)} changed since the preview; nothing was "
            "written",
            code="ChangedSincePreview",
        )
    if plan.mechanism == INLINE:
        size = reading.other_inline_size() + len(plan.document)
        if size > inline.inline_budget(identity):
            raise CloudLimitError(
                f"the restriction would bring the inline policies of {describe(identity)} to "
                f"{size} characters, over the AWS budget of {inline.inline_budget(identity)}",
                code="InlinePolicyBudget",
            )
        wanted = RestrictionHeld(plan.document, None)
    elif plan.mechanism == MANAGED:
        if len(plan.document) > MANAGED_POLICY_BUDGET:
            raise CloudLimitError(
                f"the restriction of {describe(identity)} needs {len(plan.document)} characters, "
                f"over the {MANAGED_POLICY_BUDGET} a managed policy holds",
                code="ManagedPolicyBudget",
            )
        wanted = RestrictionHeld(None, plan.document)
    else:
        raise CloudError(f"unknown restriction mechanism {plan.mechanism!r}", code="BadPlan")
    previous = reading.current
    transition(iam, identity, reading, wanted)
    return {
        "kind": SNAPSHOT_KIND,
        "mechanism": plan.mechanism,
        "document": plan.document,
        "policy_arn": reading.arn if plan.mechanism == MANAGED else None,
        "previous_document": previous.inline,
        "previous_managed_document": previous.managed,
    }


def unrestrict(iam: IAMClient, identity: IdentityRef, snapshot: Snapshot) -> bool:
    """Put back what `restrict` replaced; False when the restriction was already gone."""
    mechanism = _field(snapshot, "mechanism", required=True)
    if mechanism not in (INLINE, MANAGED) or snapshot.get("kind") != SNAPSHOT_KIND:
        raise CloudError(f"not an AWS restriction snapshot: {dict(snapshot)!r}", code="BadSnapshot")
    previous = RestrictionHeld(
        _field(snapshot, "previous_document"), _field(snapshot, "previous_managed_document")
    )
    reading = read_restriction(iam, identity)
    current = reading.current
    if (current.inline if mechanism == INLINE else current.managed) is None:
        return False
    transition(iam, identity, reading, previous)
    return True


def _field(snapshot: Mapping[str, Any], key: str, *, required: bool = False) -> str | None:
    value = snapshot.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise CloudError(f"restriction snapshot field {key!r} is not text", code="BadSnapshot")
    return value


def transition(
    iam: IAMClient, identity: IdentityRef, reading: RestrictionReading, wanted: RestrictionHeld
) -> None:
    """Move the restriction from what `reading` found to `wanted`, all or nothing.

    Denies are written before anything is removed, so the identity is never left with less
    restriction than before or after; a failed step undoes the steps before it.
    """
    current = reading.current
    arn = reading.arn
    existing = reading.existing
    ours = 1 if current.managed is not None else 0
    if wanted.managed != current.managed and existing and existing.attachments > ours:
        raise CloudConflictError(
            f"managed policy {arn} is attached to other identities than {describe(identity)}; "
            "Leash will not change it",
            code="SharedLeashPolicy",
        )
    undo = UndoLog()
    try:
        if wanted.managed is not None and wanted.managed != current.managed:
            if existing is None:
                name = inline.artefact_policy_name(RESTRICT_ARTEFACT, identity)
                created = inline.create_managed(iam, identity, name, wanted.managed)
                undo.add(lambda: inline.delete_managed(iam, identity, created))
            else:
                inline.update_managed(iam, identity, arn, wanted.managed)
                undo.add(lambda: inline.update_managed(iam, identity, arn, existing.document))
            if current.managed is None:
                inline.attach(iam, identity, arn)
                undo.add(lambda: inline.detach(iam, identity, arn))
        if wanted.inline != current.inline:
            _write_inline(iam, identity, current.inline, wanted.inline, undo)
        if wanted.managed is None and current.managed is not None:
            inline.detach(iam, identity, arn)
            undo.add(lambda: inline.attach(iam, identity, arn))
            inline.delete_managed(iam, identity, arn)
    except CloudError as error:
        undo.rollback(error)
        raise


def _write_inline(
    iam: IAMClient, identity: IdentityRef, before: str | None, after: str | None, undo: UndoLog
) -> None:
    def put_back() -> None:
        if before is None:
            inline.delete_document(iam, identity, RESTRICT_ARTEFACT)
        else:
            inline.put_document(iam, identity, RESTRICT_ARTEFACT, before)

    if after is None:
        inline.delete_document(iam, identity, RESTRICT_ARTEFACT)
    else:
        inline.put_document(iam, identity, RESTRICT_ARTEFACT, after)
    undo.add(put_back)
