"""The guardrail: a deny of privileged actions, opened per grant until it expires.

`leash-guardrail` denies every guarded action except those an approved grant exempts; each
exemption is a statement of its own that denies the action again after the grant's expiry
(`DateGreaterThan aws:CurrentTime`), so the deny resumes by itself even if Leash is down.
The last statements stop the identity from tagging or untagging itself (the owner, team and
agent marker Leash reads are tags) and from changing `leash:*` tags, in any letter case,
anywhere. An exemption denies the action everywhere but the grant's resources (`NotResource`).
The document is built deterministically, so rewriting it with the same inputs changes nothing.

The guardrail is the inline policy `leash-guardrail` while the identity's inline budget holds
it (10,240 characters for a role, 2,048 for a user). Otherwise it is split into as few
customer-managed policies `/leash/leash-guardrail-<name>-<n>` of at most 6,144 characters as
needed, attached to the identity. Every move between the two, and every rewrite, writes the
new deny before it removes the old, and undoes its writes when a later one fails.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import accumulate
from typing import TYPE_CHECKING, Any

from cloud.aws import inline
from cloud.aws.inline import MANAGED_POLICY_BUDGET, ManagedPolicy, UndoLog, describe
from cloud.aws.policy_document import POLICY_VERSION, PolicyDocument, aws_timestamp, compact
from cloud.aws.restriction import is_action_pattern
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
MECHANISM = "inline"
MANAGED_MECHANISM = "managed"
# IAM attaches at most 10 managed policies to a role or user by default (20 when raised).
MAX_ATTACHED_POLICIES = 10
MAX_CHUNKS = 20


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


def _exemption_statements(
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
        statements += _exemption_statements(
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


class _Chunk:
    """One managed document being filled: its pieces (statement index, actions) and room."""

    def __init__(self, budget: int) -> None:
        self.pieces: list[tuple[int, list[str]]] = []
        self.room = budget - _size({"Version": POLICY_VERSION, "Statement": []})

    def fitting(self, actions: Sequence[str], overhead: int) -> int:
        """Count the first `actions` that fit here in a statement `overhead` long without them."""
        left = self.room - overhead - (1 if self.pieces else 0) + 1  # no comma before the first
        sizes = accumulate(len(json.dumps(action)) + 1 for action in actions)
        return sum(1 for size in sizes if size <= left)  # sizes only grow: a prefix

    def add(self, index: int, actions: list[str], overhead: int) -> None:
        names = sum(len(json.dumps(action)) + 1 for action in actions) - 1
        self.room -= overhead + (1 if self.pieces else 0) + names
        self.pieces.append((index, actions))

    def document(self, statements: Sequence[dict[str, Any]]) -> PolicyDocument:
        """Build the document: the pieces in the order of the full guardrail's statements."""
        pieces = sorted(self.pieces, key=lambda piece: piece[0])
        chosen = [{**statements[index], "Action": actions} for index, actions in pieces]
        return {"Version": POLICY_VERSION, "Statement": chosen}


def _size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":")))


def _pack(statements: list[dict[str, Any]], count: int, budget: int) -> list[_Chunk] | None:
    """Fill `count` documents: other statements whole where they fit, then the main deny."""
    chunks = [_Chunk(budget) for _ in range(count)]
    main_last = sorted(range(len(statements)), key=lambda i: statements[i]["Sid"] == GUARDRAIL_SID)
    for index in main_last:
        statement = statements[index]
        actions: list[str] = list(statement["Action"])
        overhead = _size({**statement, "Action": []})
        whole = [chunk for chunk in chunks if chunk.fitting(actions, overhead) == len(actions)]
        split = statement["Sid"] == GUARDRAIL_SID or not whole
        for chunk in chunks if split else whole[:1]:  # a split goes over the documents in turn
            take = chunk.fitting(actions, overhead)
            if take:
                chunk.add(index, actions[:take], overhead)
                actions = actions[take:]
        if actions:
            return None
    return chunks


def chunk_documents(
    document: PolicyDocument, budget: int = MANAGED_POLICY_BUDGET
) -> list[PolicyDocument]:
    """Split a guardrail into as few documents of at most `budget` compact characters as fit.

    The main deny's action list is spread over the documents; the exemption and tag statements
    go whole into the first document with room (split only if none has). A statement appears
    at most once per document, so statement ids stay unique within each.
    """
    statements: list[dict[str, Any]] = list(document["Statement"])
    for count in range(1, MAX_CHUNKS + 1):
        packed = _pack(statements, count, budget)
        if packed is not None:
            return [chunk.document(statements) for chunk in packed if chunk.pieces]
    raise CloudLimitError(
        f"the guardrail does not fit in {MAX_CHUNKS} managed policies of {budget} characters",
        code="ManagedPolicyBudget",
    )


def chunk_policy_name(identity: IdentityRef, number: int) -> str:
    """Name the customer-managed policy holding part `number` of the identity's guardrail."""
    suffix = f"-{number}"
    base = inline.artefact_policy_name(GUARDRAIL_ARTEFACT, identity)
    return base[: inline.MAX_POLICY_NAME - len(suffix)] + suffix


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
