"""IAM v2 deny policies on a project: Leash's grant, restriction and guardrail denies.

A deny policy holds deny rules; each names principals (`principal://iam.googleapis.com/
projects/-/serviceAccounts/<email>`) and permissions in the deny format
`<service FQDN>/<resource>.<verb>` (`iam.serviceAccountKeys.create` becomes
`iam.googleapis.com/serviceAccountKeys.create`). Deny conditions may only test resource tags,
not `request.time`, so a deny never expires by itself: Leash deletes or rewrites it.
Create, update and delete are long-running operations, awaited here.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from google.cloud import iam_v2

from cloud.base import CloudConflictError, CloudError, CloudLimitError
from cloud.gcp.clients import OPERATION_TIMEOUT, GcpClients
from cloud.gcp.errors import is_etag_conflict, is_not_found

# Permission names: `service.resource.verb` (a few services add one more part).
PERMISSION_PATTERN = re.compile(r"[a-z][a-zA-Z0-9]*(?:\.[a-zA-Z0-9]+){2,3}")
DENY_PERMISSION_PATTERN = re.compile(
    r"[a-z][a-z0-9-]*(?:\.[a-z0-9-]+)+/[a-zA-Z0-9]+(?:\.[a-zA-Z0-9*]+)+"
)
# Deny-policy ids: Google takes 3 to 63 lower case letters, digits, '-' and '.' starting with a
# letter; Leash's own stay within that and never end in a hyphen.
POLICY_ID_PATTERN = re.compile(r"[a-z][a-z0-9-]{1,61}[a-z0-9]")
# Google's limits on one deny policy (google.iam.v2 Policy reference, deny-overview): a display
# name of at most 63 characters; an attachment point holds at most 500 deny rules in all.
MAX_DISPLAY_NAME = 63
MAX_RULES = 500
# Permission prefixes whose service is not `<prefix>.googleapis.com`.
SERVICE_DOMAINS = {"resourcemanager": "cloudresourcemanager.googleapis.com"}
_RETRIED_CODES = frozenset({"Aborted", "Conflict", "AlreadyExists"})


def is_permission(text: str) -> bool:
    """Say whether the text is an IAM permission name like `storage.objects.get`."""
    return PERMISSION_PATTERN.fullmatch(text) is not None


def deny_permission(permission: str) -> str:
    """Spell a permission as deny rules do: `iam.googleapis.com/serviceAccountKeys.create`."""
    if DENY_PERMISSION_PATTERN.fullmatch(permission):
        return permission
    if not is_permission(permission):
        raise CloudError(f"not a GCP IAM permission name: {permission!r}", code="BadPermission")
    service, _, rest = permission.partition(".")
    return f"{SERVICE_DOMAINS.get(service, f'{service}.googleapis.com')}/{rest}"


def principal_of(email: str) -> str:
    """Spell a service account as a deny-policy principal."""
    return f"principal://iam.googleapis.com/projects/-/serviceAccounts/{email}"


def short_hash(text: str) -> str:
    """Return 10 hex characters identifying `text` (a service account e-mail) in policy ids."""
    return hashlib.sha256(text.lower().encode()).hexdigest()[:10]


def attachment_point(project: str) -> str:
    """Return the URL-encoded full resource name deny policies of a project attach to."""
    return f"cloudresourcemanager.googleapis.com%2Fprojects%2F{project}"


def _parent(project: str) -> str:
    return f"policies/{attachment_point(project)}/denypolicies"


def check_policy_id(policy_id: str) -> str:
    """Return the id unchanged, or raise when Google would refuse it as a deny-policy id."""
    if POLICY_ID_PATTERN.fullmatch(policy_id) is None:
        raise CloudError(
            f"{policy_id!r} cannot name a deny policy (3 to 63 lower case letters, digits and "
            "hyphens, starting with a letter)",
            code="BadPolicyId",
        )
    return policy_id


def display_name(label: str, subject: str) -> str:
    """Return `label: subject` within Google's 63 characters, the same text every time.

    A subject too long to fit is cut and ends in 8 hex characters of its hash, so two long
    subjects with one beginning still get different names.
    """
    text = f"{label}: {subject}"
    if len(text) <= MAX_DISPLAY_NAME:
        return text
    room = MAX_DISPLAY_NAME - len(label) - len(": ") - len("~") - 8
    if room < 1:
        raise CloudError(f"the deny-policy label {label!r} is too long", code="BadDisplayName")
    return f"{label}: {subject[:room]}~{short_hash(subject)[:8]}"


def account_id(email: str) -> str:
    """Return the account id of a service account e-mail (the part before the @)."""
    return email.partition("@")[0]


def check_display_name(name: str) -> str:
    """Return the name unchanged, or raise when Google would refuse it as a display name."""
    if len(name) > MAX_DISPLAY_NAME:
        raise CloudError(
            f"{name!r} cannot be a deny-policy display name: Google allows at most "
            f"{MAX_DISPLAY_NAME} characters, it has {len(name)}",
            code="BadDisplayName",
        )
    return name


@dataclass(frozen=True, slots=True)
class DenyRule:
    """Principals that may not use permissions (deny format), with exceptions."""

    principals: tuple[str, ...]
    permissions: tuple[str, ...]
    exception_principals: tuple[str, ...] = ()
    exception_permissions: tuple[str, ...] = ()
    condition: str = ""

    def as_json(self) -> dict[str, Any]:
        """Return the rule as plain data, empty fields left out."""
        data: dict[str, Any] = {
            "deniedPrincipals": list(self.principals),
            "deniedPermissions": list(self.permissions),
        }
        if self.exception_principals:
            data["exceptionPrincipals"] = list(self.exception_principals)
        if self.exception_permissions:
            data["exceptionPermissions"] = list(self.exception_permissions)
        if self.condition:
            data["denialCondition"] = self.condition
        return data

    @classmethod
    def from_json(cls, data: Any) -> DenyRule:
        """Read back what `as_json` wrote (from a snapshot)."""
        if not isinstance(data, dict):
            raise CloudError(f"not a deny rule: {data!r}", code="BadSnapshot")

        def texts(key: str) -> tuple[str, ...]:
            values = data.get(key, [])
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise CloudError(
                    f"deny rule field {key!r} is not a list of text", code="BadSnapshot"
                )
            return tuple(values)

        condition = data.get("denialCondition", "")
        return cls(
            texts("deniedPrincipals"),
            texts("deniedPermissions"),
            texts("exceptionPrincipals"),
            texts("exceptionPermissions"),
            condition if isinstance(condition, str) else "",
        )


@dataclass(frozen=True, slots=True)
class DenyPolicy:
    """A deny policy as read."""

    policy_id: str
    display_name: str
    rules: tuple[DenyRule, ...]
    etag: str


def render(rules: Iterable[DenyRule]) -> str:
    """Return deny rules as compact JSON (for previews, snapshots and comparisons)."""
    return json.dumps({"rules": [rule.as_json() for rule in rules]}, separators=(",", ":"))


def _policy(message: iam_v2.Policy) -> DenyPolicy:
    rules = []
    for rule in message.rules:
        deny = rule.deny_rule
        rules.append(
            DenyRule(
                tuple(deny.denied_principals),
                tuple(deny.denied_permissions),
                tuple(deny.exception_principals),
                tuple(deny.exception_permissions),
                str(deny.denial_condition.expression) if deny.denial_condition else "",
            )
        )
    policy_id = str(message.name).rsplit("/", 1)[-1]
    return DenyPolicy(policy_id, str(message.display_name), tuple(rules), str(message.etag))


def _message(name: str, display_name: str, rules: Sequence[DenyRule], etag: str) -> iam_v2.Policy:
    return iam_v2.Policy(
        name=name,
        display_name=display_name,
        etag=etag,
        rules=[
            iam_v2.PolicyRule(
                description=display_name,
                deny_rule=iam_v2.DenyRule(
                    denied_principals=list(rule.principals),
                    denied_permissions=list(rule.permissions),
                    exception_principals=list(rule.exception_principals),
                    exception_permissions=list(rule.exception_permissions),
                ),
            )
            for rule in rules
        ],
    )


def get(clients: GcpClients, project: str, policy_id: str) -> DenyPolicy | None:
    """Read a deny policy of the project; None when there is none of that id."""
    name = f"{_parent(project)}/{policy_id}"
    try:
        message = clients.call(
            "policies.get",
            f"deny policy {policy_id} on project {project}",
            lambda: clients.policies().get_policy(name=name),
        )
    except CloudError as error:
        if is_not_found(error):
            return None
        raise
    return _policy(message)


def list_ids(clients: GcpClients, project: str, *, prefix: str) -> tuple[str, ...]:
    """List the ids of the project's deny policies that start with `prefix`."""
    pages = clients.call(
        "policies.list",
        f"deny policies on project {project}",
        lambda: list(clients.policies().list_policies(parent=_parent(project))),
    )
    ids = (str(message.name).rsplit("/", 1)[-1] for message in pages)
    return tuple(sorted(policy_id for policy_id in ids if policy_id.startswith(prefix)))


def _finish(operation: Any) -> Any:
    """Wait for a long-running deny-policy operation; its failure is raised here."""
    return operation.result(timeout=OPERATION_TIMEOUT)


def put(
    clients: GcpClients,
    project: str,
    policy_id: str,
    *,
    display_name: str,
    rules: Sequence[DenyRule],
) -> DenyPolicy | None:
    """Create the deny policy, or update it (guarded by its etag); return what was there.

    What Google would refuse (an id or display name out of bounds, more than 500 rules) is
    refused here first; a limit the cloud reports (500 policies or rules on the project)
    comes back as a `CloudLimitError` that says which deny policy could not be written.
    """
    check_policy_id(policy_id)
    check_display_name(display_name)
    if len(rules) > MAX_RULES:
        raise CloudLimitError(
            f"deny policy {policy_id} would hold {len(rules)} rules; Google allows {MAX_RULES}",
            code="TooManyRules",
        )
    target = f"deny policy {policy_id} on project {project}"
    wanted = tuple(rules)
    name = f"{_parent(project)}/{policy_id}"

    def once() -> DenyPolicy | None:
        current = get(clients, project, policy_id)
        if current is None:
            created = _message("", display_name, wanted, "")
            clients.call(
                "policies.create",
                target,
                lambda: _finish(
                    clients.policies().create_policy(
                        parent=_parent(project), policy=created, policy_id=policy_id
                    )
                ),
            )
        elif current.rules != wanted or current.display_name != display_name:
            updated = _message(name, display_name, wanted, current.etag)
            clients.call(
                "policies.update",
                target,
                lambda: _finish(clients.policies().update_policy(request={"policy": updated})),
            )
        return current

    try:
        return clients.retried(
            once,
            retry=lambda error: (
                isinstance(error, CloudConflictError) and error.code in _RETRIED_CODES
            ),
        )
    except CloudLimitError as error:
        raise CloudLimitError(
            f"Google refused {target}: a project holds at most 500 deny policies with 500 "
            f"rules in all, so remove deny policies Leash did not write there ({error})",
            code=error.code,
        ) from error


def delete(clients: GcpClients, project: str, policy_id: str) -> bool:
    """Delete a deny policy; False when there was none."""
    target = f"deny policy {policy_id} on project {project}"
    name = f"{_parent(project)}/{policy_id}"

    def once() -> bool:
        current = get(clients, project, policy_id)
        if current is None:
            return False
        request = {"name": name, "etag": current.etag}
        try:
            clients.call(
                "policies.delete",
                target,
                lambda: _finish(clients.policies().delete_policy(request=request)),
            )
        except CloudError as error:
            if is_not_found(error):  # deleted by someone else meanwhile
                return False
            raise
        return True

    return clients.retried(once, retry=is_etag_conflict)
