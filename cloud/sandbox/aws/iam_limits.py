"""Make the sandbox AWS as strict as IAM where moto is not: the inline-policy budget.

IAM limits the inline policies of one role to 10,240 characters together, and of one user to
2,048, white space not counted, and answers `LimitExceeded` (HTTP 409) to a `PutRolePolicy` /
`PutUserPolicy` that would go past it
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html). moto stores any
size. This WSGI middleware in front of moto refuses such a put the way IAM does, so a document
the sandbox accepts, AWS accepts too.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from xml.sax.saxutils import escape

from cloud.sandbox.aws.moto_calls import (
    StartResponse,
    WsgiApp,
    WsgiEnvironment,
    _buffer_body,
    _credential_scope,
    _params,
)
from cloud.sandbox.aws.moto_faults import _account

ROLE_BUDGET = 10_240
USER_BUDGET = 2_048
_PUTS = {"PutRolePolicy": "RoleName", "PutUserPolicy": "UserName"}


def policy_size(document: str) -> int:
    """IAM's size of a policy document: its characters, white space not counted."""
    return sum(1 for char in document if not char.isspace())


def _inline_policies(account: str, operation: str, name: str) -> dict[str, str] | None:
    from moto.iam.models import iam_backends

    try:
        backend = iam_backends[account]["global"]
        owner = backend.get_role(name) if operation == "PutRolePolicy" else backend.get_user(name)
    except Exception:
        return None  # not there: moto answers NoSuchEntity itself
    return {policy: str(document) for policy, document in owner.policies.items()}


class InlineBudgetMiddleware:
    """Refuse an inline-policy put that takes the role or user past IAM's aggregate budget."""

    def __init__(self, app: WsgiApp) -> None:
        self._app = app

    def __call__(self, environ: WsgiEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        scope = _credential_scope(environ.get("HTTP_AUTHORIZATION", ""))
        if scope is None or scope[1] != "iam":
            return self._app(environ, start_response)
        params = _params(environ, _buffer_body(environ))
        operation = params.get("Action", "")
        if operation not in _PUTS:
            return self._app(environ, start_response)
        name = params.get(_PUTS[operation], "")
        policy = params.get("PolicyName", "")
        document = params.get("PolicyDocument", "")
        existing = _inline_policies(_account(scope[0]), operation, name)
        if existing is None:
            return self._app(environ, start_response)
        others = sum(policy_size(d) for p, d in existing.items() if p != policy)
        budget = ROLE_BUDGET if operation == "PutRolePolicy" else USER_BUDGET
        if others + policy_size(document) <= budget:
            return self._app(environ, start_response)
        kind = "role" if operation == "PutRolePolicy" else "user"
        return _limit_exceeded(
            start_response, f"Maximum policy size of {budget} bytes exceeded for {kind} {name}"
        )


def _limit_exceeded(start_response: StartResponse, message: str) -> list[bytes]:
    body = (
        "<ErrorResponse><Error><Type>Sender</Type><Code>LimitExceeded</Code>"
        f"<Message>{escape(message)}</Message></Error>"
        f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    ).encode()
    start_response(
        "409 Conflict", [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))]
    )
    return [body]
