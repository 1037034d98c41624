"""Inject AWS faults at the wire: a WSGI middleware that answers chosen calls with an error.

Rules are matched in the order they were added; each answers `times` matching calls (or every
one, with `times=None`) and is then used up. A rule answers the way AWS would: the query
protocol's XML `ErrorResponse` (IAM, STS) or the JSON protocol's `__type` document
(Organizations, CloudTrail), with the chosen HTTP status, so botocore parses, classifies and
retries it exactly as it would a real one. A `delay` holds the answer back; with `code=""`
moto serves the call first and only the answer is late (a call that worked but whose answer
the client gave up waiting for); with `late_call` the call itself is held, then served (a slow
write that lands after whatever the caller's peers did meanwhile).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from xml.sax.saxutils import escape

from cloud.sandbox.aws.moto_calls import (
    StartResponse,
    WsgiApp,
    WsgiEnvironment,
    _buffer_body,
    _credential_scope,
    _params,
)

# Who a call came from, for `match`: these keys are filled in beside the call's parameters.
ACCOUNT_KEY = "account"
ACCESS_KEY_KEY = "access_key_id"
_REASONS = {
    400: "Bad Request",
    403: "Forbidden",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


@dataclass(slots=True)
class FaultRule:
    """One injected fault: which calls it answers, how, and how many more times."""

    service: str  # "" for any service
    operation: str  # "*" for any operation of the service
    code: str
    status: int
    remaining: int | None  # None: until cleared
    delay: float
    match: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    late_call: bool = False  # with code "": hold the call, not the answer
    used: int = 0

    def matches(self, service: str, operation: str, facts: Mapping[str, str]) -> bool:
        if self.remaining is not None and self.remaining <= 0:
            return False
        if self.service and self.service != service:
            return False
        if self.operation not in ("*", operation):
            return False
        return all(facts.get(key) == value for key, value in self.match.items())


class FaultRules:
    """The thread-safe list of faults one moto server injects."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []

    def add(self, rule: FaultRule) -> None:
        with self._lock:
            self._rules.append(rule)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def take(self, service: str, operation: str, facts: Mapping[str, str]) -> FaultRule | None:
        """Return the first rule that answers this call, counting the use (None: no fault)."""
        with self._lock:
            for rule in self._rules:
                if rule.matches(service, operation, facts):
                    rule.used += 1
                    if rule.remaining is not None:
                        rule.remaining -= 1
                    return rule
        return None


def parse_operation(operation: str) -> tuple[str, str]:
    """Split "iam:PutRolePolicy" / "iam:*" / "PutRolePolicy" / "*" into (service, operation)."""
    service, _, name = operation.rpartition(":")
    return service, name or "*"


class FaultMiddleware:
    """A WSGI app that answers calls matching a rule with an AWS-shaped error, else moto's."""

    def __init__(self, app: WsgiApp, rules: FaultRules) -> None:
        self._app = app
        self._rules = rules

    def __call__(self, environ: WsgiEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        scope = _credential_scope(environ.get("HTTP_AUTHORIZATION", ""))
        if scope is None:  # unsigned: moto's own API
            return self._app(environ, start_response)
        access_key_id, service = scope
        params = _params(environ, _buffer_body(environ))
        target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
        operation = target.rsplit(".", 1)[-1] if target else params.get("Action", "")
        facts = {**params, ACCESS_KEY_KEY: access_key_id, ACCOUNT_KEY: _account(access_key_id)}
        rule = self._rules.take(service, operation, facts)
        if rule is None:
            return self._app(environ, start_response)
        if not rule.code and rule.late_call:  # hold the call, then serve it
            time.sleep(rule.delay)
            return self._app(environ, start_response)
        if not rule.code:  # serve it, then hold the answer back
            body = b"".join(self._app(environ, _held(start_response, rule.delay)))
            return [body]
        if rule.delay:
            time.sleep(rule.delay)
        return _error(start_response, rule, json_protocol=bool(target))


def _held(start_response: StartResponse, delay: float) -> StartResponse:
    def late(status: str, headers: list[tuple[str, str]], *args: object) -> object:
        time.sleep(delay)
        return start_response(status, headers, *args)

    return late


def _error(start_response: StartResponse, rule: FaultRule, *, json_protocol: bool) -> list[bytes]:
    request_id = str(uuid.uuid4())
    message = f"injected fault: {rule.code}"
    if json_protocol:
        body = json.dumps({"__type": rule.code, "message": message}).encode()
        content_type = "application/x-amz-json-1.1"
    else:
        kind = "Receiver" if rule.status >= 500 else "Sender"
        body = (
            f"<ErrorResponse><Error><Type>{kind}</Type><Code>{escape(rule.code)}</Code>"
            f"<Message>{escape(message)}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        content_type = "text/xml"
    start_response(
        f"{rule.status} {_REASONS.get(rule.status, 'Error')}",
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("x-amzn-RequestId", request_id),
        ],
    )
    return [body]


def _account(access_key_id: str) -> str:
    """Return the account whose credentials signed the call (moto's default for long-term)."""
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.iam.models import iam_backends

    if not access_key_id.startswith("ASIA"):
        return DEFAULT_ACCOUNT_ID
    # list(): other server threads may add accounts meanwhile.
    for _, account in list(iam_backends.items()):
        for _, backend in list(account.items()):
            key = backend.access_keys.get(access_key_id)
            role_arn = getattr(key, "role_arn", None)
            if isinstance(role_arn, str) and role_arn.count(":") >= 4:
                return role_arn.split(":")[4]
    return ""
