"""A project's IAM allow policy: typed bindings, pure edits, and the etag read-modify-write.

Every write sends policy version 3 and the etag of the read it modifies (a set without the
etag would silently drop conditions); when Google answers that the etag moved on (ABORTED or
HTTP 409) the whole read-modify-write is retried, re-reading each time.

Leash's grants are bindings of one member whose condition, titled `leash-grant-<id>`, is
`request.time < timestamp("<expiry>")`: IAM itself stops honouring them at expiry.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from google.iam.v1 import iam_policy_pb2, options_pb2, policy_pb2  # type: ignore[import-untyped]
from google.type import expr_pb2  # type: ignore[import-untyped]

from cloud.base import GRANT_ARTEFACT_PREFIX, CloudError, CloudLimitError
from cloud.gcp.clients import GcpClients
from cloud.gcp.errors import is_etag_conflict

POLICY_VERSION = 3
EXPIRY_MECHANISM = "gcp-iam-condition-request-time"
# Google's limits on one allow policy.
MAX_CONDITIONAL_BINDINGS = 100
MAX_CONDITIONAL_PER_ROLE_MEMBER = 20
MAX_PRINCIPALS = 1_500
_EXPIRY = re.compile(r'^\s*request\.time\s*<\s*timestamp\(\s*"([^"]+)"\s*\)\s*$')


@dataclass(frozen=True, slots=True)
class Condition:
    """An IAM condition: a CEL expression with a title (Leash's artefact name) and description."""

    title: str
    expression: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class Binding:
    """One role given to members, under a condition or not."""

    role: str
    members: tuple[str, ...]
    condition: Condition | None = None

    @property
    def leash_grant(self) -> str | None:
        """Return the `leash-grant-*` title when this is one of Leash's grants, else None."""
        title = self.condition.title if self.condition else ""
        return title if title.startswith(GRANT_ARTEFACT_PREFIX) else None


@dataclass(frozen=True, slots=True)
class AllowPolicy:
    """A project's allow policy as read: its bindings, etag, and the raw message to write back."""

    project: str
    bindings: tuple[Binding, ...]
    etag: bytes
    raw: Any  # google.iam.v1.Policy: audit configs and other fields survive a write

    def of(self, member: str) -> tuple[Binding, ...]:
        """Return the bindings that name `member`."""
        return tuple(binding for binding in self.bindings if member in binding.members)


def member_of(email: str) -> str:
    """Spell a service account as an allow-policy member."""
    return f"serviceAccount:{email}"


def timestamp(moment: datetime) -> str:
    """Format an aware datetime as a CEL timestamp literal's UTC text (seconds precision)."""
    if moment.tzinfo is None:
        raise CloudError("a grant expiry must be timezone-aware", code="BadInput")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def expiry_condition(*, title: str, expires_at: datetime, description: str) -> Condition:
    """Build the condition that holds until `expires_at`."""
    expression = f'request.time < timestamp("{timestamp(expires_at)}")'
    return Condition(title=title, expression=expression, description=description)


def expiry_of(condition: Condition | None) -> datetime | None:
    """Return the expiry of a `request.time < timestamp(...)` condition, else None."""
    found = _EXPIRY.match(condition.expression) if condition else None
    if found is None:
        return None
    try:
        moment = datetime.fromisoformat(found.group(1).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def without_member(
    bindings: Iterable[Binding], member: str, chosen: Callable[[Binding], bool]
) -> tuple[Binding, ...]:
    """Take `member` out of the chosen bindings, dropping those left with no member."""
    kept: list[Binding] = []
    for binding in bindings:
        if member in binding.members and chosen(binding):
            members = tuple(m for m in binding.members if m != member)
            if members:
                kept.append(replace(binding, members=members))
            continue
        kept.append(binding)
    return tuple(kept)


def with_grant(
    bindings: Iterable[Binding], member: str, roles: Iterable[str], condition: Condition
) -> tuple[Binding, ...]:
    """Give `member` each role under `condition`, replacing its bindings of the same title."""
    kept = without_member(
        bindings, member, lambda b: b.condition is not None and b.condition.title == condition.title
    )
    added = tuple(Binding(role, (member,), condition) for role in dict.fromkeys(roles))
    return kept + added


def prune_expired(bindings: Iterable[Binding], now: datetime) -> tuple[Binding, ...]:
    """Drop Leash's own grant bindings whose expiry has passed (they allow nothing any more)."""
    return tuple(
        binding
        for binding in bindings
        if binding.leash_grant is None
        or (expiry := expiry_of(binding.condition)) is None
        or expiry > now
    )


def limit_problems(bindings: Iterable[Binding], member: str) -> list[str]:
    """Say which of Google's allow-policy limits the bindings break (for `member`'s roles)."""
    listed = list(bindings)
    conditional = [binding for binding in listed if binding.condition is not None]
    problems: list[str] = []
    if len(conditional) > MAX_CONDITIONAL_BINDINGS:
        problems.append(
            f"{len(conditional)} conditional bindings, over Google's limit of "
            f"{MAX_CONDITIONAL_BINDINGS} per policy"
        )
    per_role: dict[str, int] = {}
    for binding in conditional:
        if member in binding.members:
            per_role[binding.role] = per_role.get(binding.role, 0) + 1
    for role, count in sorted(per_role.items()):
        if count > MAX_CONDITIONAL_PER_ROLE_MEMBER:
            problems.append(
                f"{count} conditional bindings of {role} for {member}, over Google's limit of "
                f"{MAX_CONDITIONAL_PER_ROLE_MEMBER} per role and member"
            )
    principals = sum(len(binding.members) for binding in listed)
    if principals > MAX_PRINCIPALS:
        problems.append(f"{principals} principals, over Google's limit of {MAX_PRINCIPALS}")
    return problems


def within_limits(
    policy: AllowPolicy,
    wanted: Callable[[tuple[Binding, ...]], tuple[Binding, ...]],
    *,
    member: str,
    now: datetime,
    what: str,
) -> tuple[Binding, ...]:
    """Apply `wanted`; past a limit, first prune Leash's expired grants, then refuse."""
    result = wanted(policy.bindings)
    if not limit_problems(result, member):
        return result
    result = wanted(prune_expired(policy.bindings, now))
    problems = limit_problems(result, member)
    if problems:
        raise CloudLimitError(
            f"{what} would leave the IAM policy of project {policy.project} with "
            + "; ".join(problems)
            + " (even after removing Leash's expired grants)",
            code="IamPolicyLimit",
        )
    return result


def _binding(message: Any) -> Binding:
    condition = None
    if message.HasField("condition"):
        expr = message.condition
        condition = Condition(
            title=str(expr.title),
            expression=str(expr.expression),
            description=str(expr.description),
        )
    return Binding(str(message.role), tuple(str(m) for m in message.members), condition)


def read(clients: GcpClients, project: str) -> AllowPolicy:
    """Read a project's allow policy at version 3 (conditions included)."""
    request = iam_policy_pb2.GetIamPolicyRequest(
        resource=f"projects/{project}",
        options=options_pb2.GetPolicyOptions(requested_policy_version=POLICY_VERSION),
    )
    raw = clients.call(
        "projects.getIamPolicy",
        f"project {project}",
        lambda: clients.projects().get_iam_policy(request=request),
    )
    bindings = tuple(_binding(message) for message in raw.bindings)
    return AllowPolicy(project=project, bindings=bindings, etag=bytes(raw.etag), raw=raw)


def write(clients: GcpClients, policy: AllowPolicy, bindings: Iterable[Binding]) -> None:
    """Set the project's bindings, guarded by the etag of `policy` (never without one)."""
    if not policy.etag:
        raise CloudError(
            f"the IAM policy of project {policy.project} came without an etag; Leash never "
            "writes a policy without one",
            code="MissingEtag",
        )
    message = policy_pb2.Policy()
    message.CopyFrom(policy.raw)
    del message.bindings[:]
    for binding in bindings:
        added = message.bindings.add(role=binding.role, members=list(binding.members))
        if binding.condition is not None:
            added.condition.CopyFrom(
                expr_pb2.Expr(
                    title=binding.condition.title,
                    expression=binding.condition.expression,
                    description=binding.condition.description,
                )
            )
    message.version = POLICY_VERSION
    message.etag = policy.etag
    request = iam_policy_pb2.SetIamPolicyRequest(
        resource=f"projects/{policy.project}", policy=message
    )
    clients.call(
        "projects.setIamPolicy",
        f"project {policy.project}",
        lambda: clients.projects().set_iam_policy(request=request),
    )


def modify(
    clients: GcpClients,
    project: str,
    change: Callable[[AllowPolicy], tuple[Binding, ...] | None],
) -> tuple[AllowPolicy, tuple[Binding, ...] | None]:
    """Read, `change` and write the policy, again from the read while the etag conflicts.

    `change` returns the bindings to write, or None to write nothing (it may raise, e.g. a
    CloudLimitError, which ends the loop). Returns the last read and what was written.
    """

    def once() -> tuple[AllowPolicy, tuple[Binding, ...] | None]:
        policy = read(clients, project)
        wanted = change(policy)
        if wanted is None or wanted == policy.bindings:
            return policy, None
        write(clients, policy, wanted)
        return policy, wanted

    return clients.retried(once, retry=is_etag_conflict)
