"""A grant on AWS: one inline policy, `leash-grant-<id>`, that stops working at expiry."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from cloud.aws import inline
from cloud.aws.inline import describe
from cloud.aws.policy_document import EXPIRY_MECHANISM, compact, grant_document
from cloud.base import (
    AppliedGrant,
    CloudError,
    CloudLimitError,
    GrantArtefact,
    GrantSpec,
    IdentityRef,
    grant_artefact_name,
    grant_id_from_artefact,
)

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient


def _document(identity: IdentityRef, spec: GrantSpec) -> str:
    """Return the grant's compact policy document, refusing a grant IAM could not hold."""
    target = describe(identity)
    if not spec.actions:
        raise CloudError(f"grant {spec.grant_id} for {target} names no actions", code="NoActions")
    try:
        document = compact(grant_document(spec))
    except ValueError as error:
        raise CloudError(f"grant {spec.grant_id} for {target}: {error}", code="BadGrant") from error
    if spec.expires_at <= datetime.now(UTC):
        raise CloudError(
            f"grant {spec.grant_id} for {target} expired before it could be applied",
            code="Expired",
        )
    return document


def apply_grant(
    iam_for: Callable[[], IAMClient], identity: IdentityRef, spec: GrantSpec
) -> AppliedGrant:
    """Write the grant's inline policy; `iam_for` is asked only once the grant is valid."""
    document = _document(identity, spec)
    iam = iam_for()
    target = describe(identity)
    name = spec.artefact_name
    budget = inline.inline_budget(identity)  # a role has 10,240 characters, a user 2,048
    if len(document) > budget:
        raise CloudLimitError(
            f"grant {spec.grant_id} needs {len(document)} characters, over the AWS inline "
            f"budget of {budget} for {target}",
            code="InlinePolicyBudget",
        )
    # One round trip: IAM itself refuses a put past the identity's aggregate budget
    # (LimitExceeded); only then does Leash read the other policies, to say why.
    try:
        inline.put_document(iam, identity, name, document, named=False)
    except CloudLimitError as error:
        size = inline.inline_size(iam, identity, excluding={name}) + len(document)
        raise CloudLimitError(
            f"grant {spec.grant_id} would bring the inline policies of {target} to {size} "
            f"characters, over the AWS budget of {budget}",
            code="InlinePolicyBudget",
        ) from error.__cause__
    return AppliedGrant(artefact=name, mechanism=EXPIRY_MECHANISM)


def revoke_grant(iam: IAMClient, identity: IdentityRef, grant_id: str) -> bool:
    """Delete the grant's inline policy; False when it (or the identity) was already gone:
    then nothing grants access."""
    return inline.delete_document(iam, identity, grant_artefact_name(grant_id), named=False)


def grant_artefacts(iam: IAMClient, identity: IdentityRef) -> tuple[GrantArtefact, ...]:
    """List the identity's `leash-grant-*` inline policies."""
    return tuple(
        GrantArtefact(identity=identity, grant_id=grant_id, artefact=name)
        for name in inline.policy_names(iam, identity)
        if (grant_id := grant_id_from_artefact(name)) is not None
    )
