"""Set the dates moto keeps for a role or user: when it was created and last used."""

from __future__ import annotations

from datetime import UTC, datetime

from cloud.base import IdentityKind


def set_identity_dates(
    account: str,
    kind: IdentityKind,
    name: str,
    *,
    created_at: datetime | None = None,
    last_used_at: datetime | None = None,
    service: str = "sts",
) -> None:
    """Set when moto says a role or user was created and last used (RoleLastUsed, or the
    last use of each of the user's access keys, through `service`).

    No AWS API sets these, so this reaches into moto's backend, which the sandbox's server
    shares because it runs in this process.
    """
    from moto.iam.models import AccessKeyLastUsed, iam_backends

    backend = iam_backends[account]["aws"]
    entity = backend.get_role(name) if kind is IdentityKind.ROLE else backend.get_user(name)
    if created_at is not None:
        entity.create_date = _moto_time(created_at)
    if last_used_at is None:
        return
    if kind is IdentityKind.ROLE:
        backend.get_role(name).last_used = _moto_time(last_used_at)
        return
    for key in backend.get_user(name).access_keys:
        key.last_used = AccessKeyLastUsed(
            timestamp=_moto_time(last_used_at), service=service, region="us-east-1"
        )


def _moto_time(moment: datetime) -> datetime:
    """Return `moment` as moto keeps times: naive UTC."""
    if moment.tzinfo is None:
        raise ValueError("pass a timezone-aware datetime")
    return moment.astimezone(UTC).replace(tzinfo=None)
