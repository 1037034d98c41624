"""Make moto's cross-account access behave like AWS's.

Out of the box moto lets anyone assume any role ARN, existing or not, so a member account
without Leash's read role could not fail discovery. Here AssumeRole requires the role to exist
and to trust the caller's account. (moto itself gives accounts created through Organizations
their `OrganizationAccountAccessRole`, trusting the management account, as AWS does.)
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from moto.core.responses import ActionResult
    from moto.sts.responses import TokenResponse

ORGANIZATION_ACCESS_ROLE = "OrganizationAccountAccessRole"
_ROLE_ARN = re.compile(r"^arn:(?P<partition>[\w-]+):iam::(?P<account>\d{12}):role/")
_ORIGINAL = "_leash_original"


def install() -> None:
    """Patch moto's STS AssumeRole handler in this process (idempotent)."""
    from moto.sts.responses import TokenResponse

    _wrap(TokenResponse, "assume_role", _checked_assume_role)


def _wrap(cls: type, name: str, make: Callable[[Callable[..., Any]], Callable[..., Any]]) -> None:
    current = getattr(cls, name)
    original = getattr(current, _ORIGINAL, current)
    wrapper = make(original)
    setattr(wrapper, _ORIGINAL, original)
    setattr(cls, name, wrapper)


def _checked_assume_role(
    original: Callable[[TokenResponse], ActionResult],
) -> Callable[[TokenResponse], ActionResult]:
    def assume_role(self: TokenResponse) -> ActionResult:
        role_arn = str(self._get_param("RoleArn") or "")
        _require_trust(role_arn, caller_account=self.current_account)
        return original(self)

    return assume_role


def _require_trust(role_arn: str, *, caller_account: str) -> None:
    from moto.core.exceptions import AccessDeniedError
    from moto.iam.exceptions import NotFoundException
    from moto.iam.models import iam_backends

    denied = AccessDeniedError(
        user_arn=f"arn:aws:iam::{caller_account}:root",
        action=f"sts:AssumeRole on resource: {role_arn}",
    )
    match = _ROLE_ARN.match(role_arn)
    if match is None:
        raise denied
    backend = iam_backends[match["account"]][match["partition"]]
    try:
        role = backend.get_role_by_arn(role_arn)
    except NotFoundException:
        raise denied from None
    if not trusts_account(role.assume_role_policy_document, caller_account):
        raise denied


def trusts_account(trust_policy: str, account: str) -> bool:
    """Say whether a trust policy lets principals of `account` call sts:AssumeRole."""
    statements = json.loads(trust_policy).get("Statement", [])
    for statement in [statements] if isinstance(statements, dict) else statements:
        if statement.get("Effect") != "Allow":
            continue
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        if not any(a in ("sts:AssumeRole", "sts:*", "*") for a in actions):
            continue
        principal = statement.get("Principal", {})
        aws = principal if principal == "*" else principal.get("AWS", [])
        for value in [aws] if isinstance(aws, str) else aws:
            if value in ("*", account) or f":{account}:" in value:
                return True
    return False
