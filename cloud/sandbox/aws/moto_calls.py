"""Record every AWS API call moto serves: service, operation, user agent, parameters, caller.

A WSGI middleware in front of moto's app reads what the wire says: the service from the SigV4
credential scope, the operation from the `Action` parameter (query protocol: IAM, STS, EC2) or
the `X-Amz-Target` header (JSON protocol: Organizations, CloudTrail). It buffers the body and
hands moto an identical copy, so recording never changes what moto sees.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qsl

from cloud.sandbox.operation_log import CloudOperation, publish
from cloud.user_agent import is_leash

WsgiEnvironment = dict[str, Any]
StartResponse = Callable[..., Any]
WsgiApp = Callable[[WsgiEnvironment, StartResponse], Iterable[bytes]]

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
# SigV4 signing names that are not the service's IAM action prefix.
_IAM_PREFIXES = {"monitoring": "cloudwatch", "email": "ses", "execute-api": "apigateway"}
# Operations whose IAM action is not `<prefix>:<Operation>`.
_IAM_ACTIONS = {
    ("s3", "ListObjectsV2"): "s3:ListBucket",
    ("s3", "HeadBucket"): "s3:ListBucket",
    ("s3", "HeadObject"): "s3:GetObject",
    ("lambda", "ListFunctions20150331"): "lambda:ListFunctions",
    ("lambda", "GetFunction20150331v2"): "lambda:GetFunction",
}


def aws_permission(service: str, operation: str) -> str:
    """Return the IAM action AWS authorizes for `operation` of the SigV4 `service`."""
    explicit = _IAM_ACTIONS.get((service, operation))
    if explicit is not None:
        return explicit
    return f"{_IAM_PREFIXES.get(service, service)}:{operation}"


@dataclass(frozen=True, slots=True)
class MotoCall:
    """One AWS API call moto served."""

    service: str  # the SigV4 signing name: "iam", "sts", "organizations", "cloudtrail"
    operation: str  # "DeleteRolePolicy", "ListAccounts" ("" when the wire does not say)
    user_agent: str
    # Query-protocol parameters (query string and form body), e.g. {"PolicyName": "x"}; for the
    # JSON protocol the body's top-level scalars, as strings.
    params: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    access_key_id: str = ""
    caller_role: str = ""  # the role name, when assumed-role credentials signed the call

    @property
    def permission(self) -> str:
        """Return the IAM action AWS authorizes for this call."""
        return aws_permission(self.service, self.operation)

    @property
    def by_leash(self) -> bool:
        """Say whether Leash's own clients made the call (their user agent names Leash)."""
        return is_leash(self.user_agent)

    def as_operation(self) -> CloudOperation:
        """Return the call as the cloud-neutral record the manifest check reads."""
        return CloudOperation(
            cloud="aws",
            service=self.service,
            operation=self.operation,
            permission=self.permission,
            user_agent=self.user_agent,
            caller_role=self.caller_role,
        )


class MotoCallLog:
    """The calls one moto server served, oldest first; safe to share between threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: list[MotoCall] = []
        self._roles: dict[str, str] = {}  # access key id -> assumed role name ("" for none)

    def record(self, call: MotoCall) -> None:
        """Append one call and hand it to the operation observers."""
        with self._lock:
            self._calls.append(call)
        publish(call.as_operation())

    def calls(self) -> list[MotoCall]:
        """Return a copy of every call recorded since start or the last `clear`."""
        with self._lock:
            return list(self._calls)

    def clear(self) -> None:
        """Forget the recorded calls."""
        with self._lock:
            self._calls.clear()

    def caller_role(self, access_key_id: str) -> str:
        """Return the role `access_key_id` was issued for by AssumeRole ("" if none)."""
        with self._lock:
            known = self._roles.get(access_key_id)
        if known is not None:
            return known
        role = _assumed_role_name(access_key_id)
        # Keys never change role; one that is unknown now may yet be issued, so only hits stay.
        if role:
            with self._lock:
                self._roles[access_key_id] = role
        return role


def _assumed_role_name(access_key_id: str) -> str:
    """Ask moto which role (if any) it issued `access_key_id` for."""
    if not access_key_id.startswith("ASIA"):
        return ""  # long-term keys ("testing", AKIA...) belong to no assumed role
    from moto.iam.models import iam_backends

    # list(): other server threads may add accounts meanwhile (as moto's own lookup does).
    for _, account in list(iam_backends.items()):
        for _, backend in list(account.items()):
            key = backend.access_keys.get(access_key_id)
            role_arn = getattr(key, "role_arn", None)
            if isinstance(role_arn, str) and role_arn:
                return role_arn.rsplit("/", 1)[-1]
    return ""


class RecordingMiddleware:
    """A WSGI app that records each signed AWS request in a log, then passes it to moto."""

    def __init__(self, app: WsgiApp, log: MotoCallLog) -> None:
        self._app = app
        self._log = log

    def __call__(self, environ: WsgiEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        scope = _credential_scope(environ.get("HTTP_AUTHORIZATION", ""))
        if scope is not None:  # unsigned: moto's own API (/moto-api/reset) or a browser
            access_key_id, service = scope
            params = _params(environ, _buffer_body(environ))
            target = str(environ.get("HTTP_X_AMZ_TARGET", ""))  # "AWSOrganizations....ListAccounts"
            self._log.record(
                MotoCall(
                    service=service,
                    operation=target.rsplit(".", 1)[-1] if target else params.get("Action", ""),
                    user_agent=str(environ.get("HTTP_USER_AGENT", "")),
                    params=MappingProxyType(params),
                    access_key_id=access_key_id,
                    caller_role=self._log.caller_role(access_key_id),
                )
            )
        return self._app(environ, start_response)


def _credential_scope(authorization: str) -> tuple[str, str] | None:
    """Return (access key id, service) from a SigV4 Authorization header, or None."""
    _, _, rest = authorization.partition("Credential=")
    credential = rest.split(",", 1)[0].strip()
    parts = credential.split("/")  # AKID/20260101/us-east-1/iam/aws4_request
    if len(parts) != 5:
        return None
    return parts[0], parts[3]


def _buffer_body(environ: WsgiEnvironment) -> bytes:
    """Read the request body and put an identical, re-readable copy back for moto."""
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    length = str(environ.get("CONTENT_LENGTH") or "").strip()
    if length.isdigit():
        body = stream.read(int(length)) if int(length) else b""
    elif environ.get("wsgi.input_terminated"):
        # Chunked: the server has de-chunked the stream; give moto a plain sized body instead.
        body = stream.read()
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        environ["wsgi.input_terminated"] = False
    else:
        return b""  # no declared length: moto reads nothing either
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


def _is_form(environ: WsgiEnvironment) -> bool:
    return str(environ.get("CONTENT_TYPE", "")).lower().startswith(FORM_CONTENT_TYPE)


def _params(environ: WsgiEnvironment, body: bytes) -> dict[str, str]:
    """Return the query string's and form body's parameters, or a JSON body's scalars."""
    params = dict(parse_qsl(str(environ.get("QUERY_STRING", "")), keep_blank_values=True))
    if _is_form(environ):
        params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    elif environ.get("HTTP_X_AMZ_TARGET") and body:
        try:
            document = json.loads(body)
        except ValueError:
            return params
        if isinstance(document, dict):
            params.update(
                (key, str(value))
                for key, value in document.items()
                if isinstance(value, str | int | float | bool)
            )
    return params
