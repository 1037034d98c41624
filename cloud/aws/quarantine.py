"""Quarantine an AWS role or user: deny everything, old sessions included; delete nothing.

The deny-all lives in the inline policy `leash-quarantine`, or in the customer-managed policy
`/leash/leash-quarantine-<name>` when the inline budget is full. Its second statement denies
every session issued before the quarantine (`aws:TokenIssueTime`), so credentials already
handed out stop working even if the deny-all is later removed by hand. Two tags say when and
why. `release` removes the deny-all and gives the tags back their earlier values; the deny of
sessions issued before the quarantine stays, as `leash-revoked-sessions` (as AWS's own
"revoke active sessions" does), so a release never brings old credentials back to life.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cloud.aws import inline
from cloud.aws.inline import MANAGED_POLICY_BUDGET, UndoLog, describe
from cloud.aws.policy_document import POLICY_VERSION, PolicyDocument, aws_timestamp, compact
from cloud.base import (
    QUARANTINE_ARTEFACT,
    QUARANTINE_TAG,
    CloudConflictError,
    CloudError,
    CloudLimitError,
    IdentityRef,
    Snapshot,
)

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

DENY_ALL_SID = "LeashQuarantineDenyAll"
REVOKE_SESSIONS_SID = "LeashRevokeOlderSessions"
SESSIONS_ARTEFACT = "leash-revoked-sessions"
REASON_TAG = "leash:quarantine-reason"
QUARANTINE_TAGS = (QUARANTINE_TAG, REASON_TAG)
INLINE = "inline"
MANAGED = "managed"
SNAPSHOT_KIND = "aws-quarantine"
MAX_TAG_VALUE = 256


def quarantine_document(at: datetime) -> PolicyDocument:
    """Build the deny-all that also revokes sessions issued before `at`."""
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {"Sid": DENY_ALL_SID, "Effect": "Deny", "Action": "*", "Resource": "*"},
            {
                "Sid": REVOKE_SESSIONS_SID,
                "Effect": "Deny",
                "Action": "*",
                "Resource": "*",
                "Condition": {"DateLessThan": {"aws:TokenIssueTime": aws_timestamp(at)}},
            },
        ],
    }


def tag_value(text: str) -> str:
    """Fit free text into an IAM tag value: letters, digits, spaces and `_.:/=+-@`, 256 long."""
    kept = "".join(
        char if unicodedata.category(char)[0] in "LNZ" or char in "_.:/=+-@" else " "
        for char in text
    )
    return " ".join(kept.split())[:MAX_TAG_VALUE].rstrip()


def _policy_arn(identity: IdentityRef) -> str:
    name = inline.artefact_policy_name(QUARANTINE_ARTEFACT, identity)
    return inline.managed_policy_arn(identity, name)


def quarantine(iam: IAMClient, identity: IdentityRef, *, at: datetime, reason: str) -> Snapshot:
    """Write the deny-all and the quarantine tags; return how to undo them."""
    try:
        stamp = aws_timestamp(at)
    except ValueError as error:
        raise CloudError(f"quarantine of {describe(identity)}: {error}", code="BadInput") from error
    document = compact(quarantine_document(at))
    names = inline.policy_names(iam, identity)
    arn = _policy_arn(identity)
    if QUARANTINE_ARTEFACT in names or arn in inline.attached_policies(iam, identity):
        raise CloudConflictError(
            f"{describe(identity)} is already quarantined", code="AlreadyQuarantined"
        )
    size = sum(map(len, inline.documents(iam, identity, names).values())) + len(document)
    mechanism = INLINE if size <= inline.inline_budget(identity) else MANAGED
    before = inline.tags(iam, identity)
    previous = {key: before.get(key) for key in QUARANTINE_TAGS}
    undo = UndoLog()
    try:
        if mechanism == INLINE:
            inline.put_document(iam, identity, QUARANTINE_ARTEFACT, document)
            undo.add(lambda: inline.delete_document(iam, identity, QUARANTINE_ARTEFACT))
        else:
            _attach_managed(iam, identity, arn, document, undo)
        inline.set_tags(iam, identity, {QUARANTINE_TAG: stamp, REASON_TAG: tag_value(reason)})
    except CloudError as error:
        undo.rollback(error)
        raise
    return {
        "kind": SNAPSHOT_KIND,
        "mechanism": mechanism,
        "policy_arn": arn if mechanism == MANAGED else None,
        "quarantined_at": stamp,
        "previous_tags": previous,
    }


def _attach_managed(
    iam: IAMClient, identity: IdentityRef, arn: str, document: str, undo: UndoLog
) -> None:
    if len(document) > MANAGED_POLICY_BUDGET:  # cannot happen: the document is ~300 characters
        raise CloudLimitError(f"the quarantine of {describe(identity)} does not fit IAM")
    existing = inline.get_managed(iam, identity, arn)
    if existing is not None and existing.attachments:
        raise CloudConflictError(
            f"managed policy {arn} is attached to other identities than {describe(identity)}; "
            "Leash will not change it",
            code="SharedLeashPolicy",
        )
    if existing is None:
        name = inline.artefact_policy_name(QUARANTINE_ARTEFACT, identity)
        created = inline.create_managed(iam, identity, name, document)
        undo.add(lambda: inline.delete_managed(iam, identity, created))
    else:  # left behind, detached, by an earlier failure: reuse it
        inline.update_managed(iam, identity, arn, document)
        undo.add(lambda: inline.delete_managed(iam, identity, arn))
    inline.attach(iam, identity, arn)
    undo.add(lambda: inline.detach(iam, identity, arn))


def sessions_document(at: str) -> PolicyDocument:
    """The deny of every session issued before `at` that stays after a release."""
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Sid": REVOKE_SESSIONS_SID,
                "Effect": "Deny",
                "Action": "*",
                "Resource": "*",
                "Condition": {"DateLessThan": {"aws:TokenIssueTime": at}},
            }
        ],
    }


def _keep_session_revocation(
    iam: IAMClient, identity: IdentityRef, stamp: str, undo: UndoLog
) -> None:
    """Write (or move forward) the old-sessions deny that outlives the quarantine.

    Like AWS's own "revoke active sessions", it stays: credentials handed out before the
    quarantine must not work again after it. Inline while it fits, else a /leash/ policy.
    """
    document = compact(sessions_document(stamp))
    current = inline.documents(iam, identity)
    earlier = current.pop(SESSIONS_ARTEFACT, None)
    current.pop(QUARANTINE_ARTEFACT, None)  # about to go
    if sum(map(len, current.values())) + len(document) <= inline.inline_budget(identity):
        inline.put_document(iam, identity, SESSIONS_ARTEFACT, document)
        if earlier is not None:
            undo.add(lambda: inline.put_document(iam, identity, SESSIONS_ARTEFACT, earlier))
        else:
            undo.add(lambda: inline.delete_document(iam, identity, SESSIONS_ARTEFACT))
        return
    name = inline.artefact_policy_name(SESSIONS_ARTEFACT, identity)
    arn = inline.managed_policy_arn(identity, name)
    existing = inline.get_managed(iam, identity, arn)
    if existing is None:
        created = inline.create_managed(iam, identity, name, document)
        undo.add(lambda: inline.delete_managed(iam, identity, created))
    else:
        inline.update_managed(iam, identity, arn, document)
    if arn not in inline.attached_policies(iam, identity):
        inline.attach(iam, identity, arn)
        undo.add(lambda: inline.detach(iam, identity, arn))


def release(iam: IAMClient, identity: IdentityRef, snapshot: Snapshot) -> bool:
    """Remove the deny-all and restore the tags; False (nothing changed) when not quarantined.

    The deny of sessions issued before the quarantine stays (`leash-revoked-sessions`).
    """
    mechanism, previous = _parse(snapshot)
    stamp = str(snapshot.get("quarantined_at") or "")
    arn = _policy_arn(identity)
    if mechanism == INLINE:
        present = QUARANTINE_ARTEFACT in inline.policy_names(iam, identity)
    else:
        present = arn in inline.attached_policies(iam, identity)
    if not present:
        return False
    current = inline.tags(iam, identity)
    restore = {key: value for key, value in previous.items() if value is not None}
    absent = [key for key, value in previous.items() if value is None]
    undo = UndoLog()
    try:
        # The lasting session deny first, then the tags: the deny-all goes last, so a
        # failure leaves the identity quarantined.
        if stamp:
            _keep_session_revocation(iam, identity, stamp, undo)
        undo.add(lambda: _put_tags_back(iam, identity, current))
        inline.set_tags(iam, identity, restore)
        inline.remove_tags(iam, identity, absent)
        if mechanism == INLINE:
            inline.delete_document(iam, identity, QUARANTINE_ARTEFACT)
        else:
            inline.detach(iam, identity, arn)
            undo.add(lambda: inline.attach(iam, identity, arn))
            inline.delete_managed(iam, identity, arn)
    except CloudError as error:
        undo.rollback(error)
        raise
    return True


def _put_tags_back(iam: IAMClient, identity: IdentityRef, current: Mapping[str, str]) -> None:
    inline.set_tags(iam, identity, {key: current[key] for key in QUARANTINE_TAGS if key in current})
    inline.remove_tags(iam, identity, [key for key in QUARANTINE_TAGS if key not in current])


def _parse(snapshot: Snapshot) -> tuple[str, dict[str, str | None]]:
    mechanism = snapshot.get("mechanism")
    tags: Any = snapshot.get("previous_tags")
    valid = (
        snapshot.get("kind") == SNAPSHOT_KIND
        and mechanism in (INLINE, MANAGED)
        and isinstance(tags, Mapping)
        and set(tags) == set(QUARANTINE_TAGS)
        and all(value is None or isinstance(value, str) for value in tags.values())
    )
    if not valid or not isinstance(mechanism, str):
        raise CloudError(f"not an AWS quarantine snapshot: {dict(snapshot)!r}", code="BadSnapshot")
    return mechanism, {str(key): value for key, value in tags.items()}
