"""Writing the guardrail: inline while it fits, else managed chunks; new deny before old."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from cloud.aws import inline
from cloud.aws.guardrail.chunks import MAX_CHUNKS, chunk_documents, chunk_policy_name
from cloud.aws.guardrail.document import guardrail_document
from cloud.aws.inline import ManagedPolicy, UndoLog, describe
from cloud.aws.policy_document import compact
from cloud.base import (
    GUARDRAIL_ARTEFACT,
    CloudConflictError,
    CloudError,
    CloudLimitError,
    Exemption,
    GuardrailChange,
    IdentityRef,
)

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

MECHANISM = "inline"
MANAGED_MECHANISM = "managed"
# IAM attaches at most 10 managed policies to a role or user by default (20 when raised).
MAX_ATTACHED_POLICIES = 10


@dataclass(frozen=True, slots=True)
class _Slot:
    """One place that holds (part of) the guardrail: the inline policy, or managed chunk n."""

    number: int  # 0: the inline policy
    before: str | None  # what it denies the identity now (a detached policy denies nothing)
    after: str | None
    arn: str | None = None
    existing: ManagedPolicy | None = None
    attached: bool = False

    def needs_write(self) -> bool:
        """Say whether the slot changes, or is a managed chunk left attached to nobody."""
        orphan = self.after is None and self.existing is not None and not self.existing.attachments
        return self.before != self.after or orphan


def _render(inline_document: str | None, chunks: Sequence[str]) -> str | None:
    """Spell where the guardrail is as one comparable string: a document or a JSON list."""
    listed = "[" + ",".join(chunks) + "]"
    if chunks and inline_document is not None:
        return f'{{"inline":{inline_document},"managed":{listed}}}'
    return listed if chunks else inline_document


def _chunk_slots(
    iam: IAMClient, identity: IdentityRef, wanted: Sequence[str], attached: Sequence[str]
) -> list[_Slot]:
    """Pair each wanted chunk, and each chunk policy IAM still has, with what it holds now."""
    arns = {
        number: inline.managed_policy_arn(identity, chunk_policy_name(identity, number))
        for number in range(1, MAX_CHUNKS + 1)
    }
    ours = {number for number, arn in arns.items() if arn in attached}
    top = max([len(wanted), *ours])
    slots: list[_Slot] = []
    for number, arn in arns.items():
        existing = inline.get_managed(iam, identity, arn)
        if existing is None and number > top:  # chunks are made in order: none beyond
            break
        mine = number in ours and existing is not None
        before = existing.document if mine and existing else None
        after = wanted[number - 1] if number <= len(wanted) else None
        slots.append(_Slot(number, before, after, arn, existing, mine))
    return slots


def guardrail(
    iam: IAMClient,
    identity: IdentityRef,
    actions: Sequence[str],
    exemptions: Sequence[Exemption] = (),
    *,
    dry_run: bool = False,
    now: datetime | None = None,
) -> GuardrailChange:
    """Write (unless `dry_run` or unchanged) the guardrail; return it before and after.

    `mechanism` is `inline`, or `managed:<n>` for n customer-managed policies; `before` and
    `after` are the inline document or a JSON list of the managed documents.
    """
    document = guardrail_document(
        actions, exemptions, now=now or datetime.now(UTC), identity=identity
    )
    single = compact(document)
    documents = inline.documents(iam, identity)
    others = sum(len(d) for name, d in documents.items() if name != GUARDRAIL_ARTEFACT)
    budget = inline.inline_budget(identity)
    fits_inline = others + len(single) <= budget
    wanted = [] if fits_inline else [compact(part) for part in chunk_documents(document)]
    attached = inline.attached_policies(iam, identity)
    slots = _chunk_slots(iam, identity, wanted, attached)
    current = documents.get(GUARDRAIL_ARTEFACT)
    before = _render(current, [slot.before for slot in slots if slot.before is not None])
    after = single if fits_inline else f"[{','.join(wanted)}]"
    mechanism = MECHANISM if fits_inline else f"{MANAGED_MECHANISM}:{len(wanted)}"
    change = GuardrailChange(identity=identity, before=before, after=after, mechanism=mechanism)
    if before == after:
        return change
    shared = [
        slot.arn
        for slot in slots
        if slot.existing
        and slot.after
        and slot.before != slot.after
        # a role and a user of one name, say: changing the policy would change the other
        and slot.existing.attachments > slot.attached
    ]
    if shared:
        raise CloudConflictError(
            f"managed policy {shared[0]} is attached to other identities than "
            f"{describe(identity)}; Leash will not change it",
            code="SharedLeashPolicy",
        )
    foreign = len(set(attached) - {slot.arn for slot in slots})
    if wanted and foreign + len(wanted) > MAX_ATTACHED_POLICIES:
        raise CloudLimitError(
            f"the guardrail of {describe(identity)} needs {len(single)} characters, more than "
            f"its inline policies have left ({max(budget - others, 0)} of {budget}); as managed "
            f"policies it needs {len(wanted)}, but {foreign} others are attached and IAM "
            f"attaches at most {MAX_ATTACHED_POLICIES} to one {identity.kind}",
            code="AttachedPolicyLimit",
        )
    if not dry_run:
        _apply(iam, identity, [_Slot(0, current, single if fits_inline else None), *slots])
    return change


def _actions(document: str | None) -> set[str]:
    """Name (lower case) every action a policy document lists."""
    statements: Any = json.loads(document)["Statement"] if document else []
    found: set[str] = set()
    for statement in statements if isinstance(statements, list) else [statements]:
        action = statement.get("Action", [])
        found.update(name.lower() for name in ([action] if isinstance(action, str) else action))
    return found


def _write_order(slots: Sequence[_Slot]) -> list[_Slot]:
    """Order the writes so an action a slot stops denying is first denied by its new slot.

    Writes come before removals; should two chunks trade actions both ways (a cycle no order
    satisfies), the lower-numbered one goes first.
    """
    pending = [slot for slot in slots if slot.needs_write()]
    removed = {slot.number: _actions(slot.before) - _actions(slot.after) for slot in pending}
    added = {slot.number: _actions(slot.after) - _actions(slot.before) for slot in pending}
    ordered: list[_Slot] = []
    while pending:
        ready = [
            slot
            for slot in pending
            if not any(removed[slot.number] & added[other.number] for other in pending)
        ]
        slot = min(ready or pending, key=lambda s: (s.after is None, s.number))
        ordered.append(slot)
        pending.remove(slot)
    return ordered


def _apply(iam: IAMClient, identity: IdentityRef, slots: Sequence[_Slot]) -> None:
    """Write every slot that changes in a safe order, all or nothing."""
    undo = UndoLog()
    try:
        for slot in _write_order(slots):
            _write(iam, identity, slot, undo)
    except CloudError as error:
        undo.rollback(error)
        raise


def _write(iam: IAMClient, identity: IdentityRef, slot: _Slot, undo: UndoLog) -> None:
    """Make one slot hold what it should, remembering how to undo that."""
    before, after, arn, existing = slot.before, slot.after, slot.arn, slot.existing
    if arn is None:
        if after is None:
            inline.delete_document(iam, identity, GUARDRAIL_ARTEFACT)
        else:
            inline.put_document(iam, identity, GUARDRAIL_ARTEFACT, after)
        undo.add(
            lambda: (
                inline.delete_document(iam, identity, GUARDRAIL_ARTEFACT)
                if before is None
                else inline.put_document(iam, identity, GUARDRAIL_ARTEFACT, before)
            )
        )
        return
    name = chunk_policy_name(identity, slot.number)
    if after is None:  # a surplus chunk: detach it, and delete it unless others use it
        if slot.attached:
            inline.detach(iam, identity, arn)
            undo.add(lambda: inline.attach(iam, identity, arn))
        if existing is not None and existing.attachments <= slot.attached:
            inline.delete_managed(iam, identity, arn)
            undo.add(lambda: inline.create_managed(iam, identity, name, existing.document))
        return
    if existing is None:
        inline.create_managed(iam, identity, name, after)
        undo.add(lambda: inline.delete_managed(iam, identity, arn))
    elif existing.document != after:  # a new default version; older ones are deleted
        inline.update_managed(iam, identity, arn, after)
        undo.add(lambda: inline.update_managed(iam, identity, arn, existing.document))
    if not slot.attached:
        inline.attach(iam, identity, arn)
        undo.add(lambda: inline.detach(iam, identity, arn))
