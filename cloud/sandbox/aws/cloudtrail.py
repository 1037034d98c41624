"""CloudTrail for moto: LookupEvents answered from an `ActivityLog`, which IAM writes feed.

moto 5.2 answers LookupEvents with HTTP 500. `install` gives it a handler that behaves like
CloudTrail's: one lookup attribute at most, 1 to 50 results a page, a default window of the
last 90 days, the caller's account and Region only (IAM's events are in us-east-1), newest
first, and each event's `CloudTrailEvent` as the JSON string CloudTrail returns. It also
records every IAM write the sandbox answers (CreateRole, PutRolePolicy, ...) as an event
naming the caller, as CloudTrail would -- failed calls included, with their `errorCode`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from cloud.sandbox.aws.activity import ActivityLog, TrailEvent

if TYPE_CHECKING:
    from moto.cloudtrail.responses import CloudTrailResponse
    from moto.iam.responses import IamResponse

# LookupEvents' attribute keys, mapped to what each matches on an event.
LOOKUP_KEYS: dict[str, Callable[[TrailEvent], Iterable[str]]] = {
    "EventId": lambda e: (e.event_id,),
    "EventName": lambda e: (e.event_name,),
    "ReadOnly": lambda e: (str(e.read_only).lower(),),
    "Username": lambda e: (e.username,),
    "ResourceType": lambda e: (kind for kind, _ in e.resources),
    "ResourceName": lambda e: (name for _, name in e.resources),
    "EventSource": lambda e: (e.event_source,),
    "AccessKeyId": lambda e: (e.access_key_id,),
}
LOOKBACK = timedelta(days=90)
MAX_RESULTS = 50
IAM_REGION = "us-east-1"
SSO_ROLE_PATH = "/aws-reserved/sso.amazonaws.com/"
# The IAM writes recorded, by moto handler name, with the request parameters each event keeps.
_ROLE = ("RoleName",)
_USER = ("UserName",)
RECORDED_IAM_CALLS: dict[str, tuple[str, ...]] = {
    "create_role": (*_ROLE, "Path", "Description"),
    "delete_role": _ROLE,
    "put_role_policy": (*_ROLE, "PolicyName"),
    "delete_role_policy": (*_ROLE, "PolicyName"),
    "attach_role_policy": (*_ROLE, "PolicyArn"),
    "detach_role_policy": (*_ROLE, "PolicyArn"),
    "put_role_permissions_boundary": (*_ROLE, "PermissionsBoundary"),
    "update_assume_role_policy": _ROLE,
    "create_user": (*_USER, "Path"),
    "delete_user": _USER,
    "put_user_policy": (*_USER, "PolicyName"),
    "delete_user_policy": (*_USER, "PolicyName"),
    "attach_user_policy": (*_USER, "PolicyArn"),
    "detach_user_policy": (*_USER, "PolicyArn"),
}
_ORIGINAL = "_leash_original"


def install(log: ActivityLog) -> None:
    """Patch moto's CloudTrail and IAM response classes in this process (idempotent)."""
    from moto.cloudtrail.responses import CloudTrailResponse
    from moto.iam.responses import IamResponse

    setattr(CloudTrailResponse, "lookup_events", _lookup_handler(log))  # noqa: B010
    for name, parameters in RECORDED_IAM_CALLS.items():
        current = getattr(IamResponse, name)
        original = getattr(current, _ORIGINAL, current)
        wrapper = _recording(original, log, _event_name(name), parameters)
        setattr(wrapper, _ORIGINAL, original)
        setattr(IamResponse, name, wrapper)


def _event_name(handler: str) -> str:
    return "".join(part.capitalize() for part in handler.split("_"))


def _error(code: str, message: str) -> Exception:
    from moto.core.exceptions import JsonRESTError

    return JsonRESTError(code, message)


def _lookup_handler(log: ActivityLog) -> Callable[[CloudTrailResponse], str]:
    def lookup_events(self: CloudTrailResponse) -> str:
        account = self.current_account
        log.note_lookup(account)
        refusal = log.lookup_refusal(account)
        if refusal is not None:
            raise _error(refusal, _refusal_message(refusal, account))
        now = datetime.now(UTC)
        start = _moment(self._get_param("StartTime")) or now - LOOKBACK
        end = _moment(self._get_param("EndTime")) or now
        if start > end:
            raise _error("InvalidTimeRangeException", "StartTime must be before EndTime.")
        attributes = self._get_param("LookupAttributes") or []
        if len(attributes) > 1 or any(a.get("AttributeKey") not in LOOKUP_KEYS for a in attributes):
            raise _error(
                "InvalidLookupAttributesException",
                "Specify one lookup attribute, keyed by one of " + ", ".join(LOOKUP_KEYS),
            )
        limit = int(self._get_param("MaxResults") or MAX_RESULTS)
        if not 1 <= limit <= MAX_RESULTS:
            raise _error("InvalidMaxResultsException", f"MaxResults must be 1 to {MAX_RESULTS}.")
        token = str(self._get_param("NextToken") or "0")
        if not token.isdigit():
            raise _error("InvalidNextTokenException", "Invalid NextToken.")
        offset = int(token)
        matching = [
            event
            for event in log.events(account)
            if event.region == self.region
            and start <= event.event_time <= end
            and all(
                attribute["AttributeValue"] in LOOKUP_KEYS[attribute["AttributeKey"]](event)
                for attribute in attributes
            )
        ]
        page = matching[offset : offset + limit]
        body: dict[str, Any] = {"Events": [_event_json(event) for event in page]}
        if offset + limit < len(matching):
            body["NextToken"] = str(offset + limit)
        return json.dumps(body)

    return lookup_events


def _refusal_message(code: str, account: str) -> str:
    if code.startswith("AccessDenied"):
        return (
            f"User: arn:aws:sts::{account}:assumed-role/LeashReadOnly/leash is not authorized "
            "to perform: cloudtrail:LookupEvents because no identity-based policy allows "
            "the cloudtrail:LookupEvents action"
        )
    return "Rate exceeded"


def _moment(value: object) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def user_identity(event: TrailEvent) -> dict[str, Any]:
    """Return the event's `userIdentity`, shaped as CloudTrail shapes it for that caller."""
    arn = event.principal_arn
    if not arn:
        return {"type": "AWSService", "invokedBy": event.invoked_by}
    parts = arn.split(":", 5)
    caller_account = parts[4] if len(parts) == 6 else event.account
    resource = parts[5] if len(parts) == 6 else ""
    identity: dict[str, Any] = {"arn": arn, "accountId": caller_account}
    if event.access_key_id:
        identity["accessKeyId"] = event.access_key_id
    if resource.startswith("assumed-role/"):
        _, role, session = resource.split("/", 2)
        path = SSO_ROLE_PATH if role.startswith("AWSReservedSSO_") else "/"
        role_id = (
            "AROA" + hashlib.sha256(f"{caller_account}:{role}".encode()).hexdigest()[:17].upper()
        )
        identity |= {
            "type": "AssumedRole",
            "principalId": f"{role_id}:{session}",
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": role_id,
                    "arn": event.issuer_arn or f"arn:aws:iam::{caller_account}:role{path}{role}",
                    "accountId": caller_account,
                    "userName": role,
                },
                "attributes": {
                    "creationDate": event.event_time.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "mfaAuthenticated": "false",
                },
            },
        }
    elif resource == "root":
        identity |= {"type": "Root", "principalId": caller_account}
    elif resource.startswith("federated-user/"):
        identity |= {"type": "FederatedUser", "principalId": f"{caller_account}:{event.username}"}
    else:
        identity |= {"type": "IAMUser", "userName": resource.rsplit("/", 1)[-1]}
    if event.invoked_by:
        identity["invokedBy"] = event.invoked_by
    return identity


def _event_json(event: TrailEvent) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "eventVersion": "1.08",
        "userIdentity": user_identity(event),
        "eventTime": event.event_time.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": event.event_source,
        "eventName": event.event_name,
        "awsRegion": event.region,
        "sourceIPAddress": event.invoked_by or "198.51.100.7",
        "userAgent": event.invoked_by or "aws-cli/2.15.0",
        "requestParameters": dict(event.request_parameters) or None,
        "responseElements": None,
        "readOnly": event.read_only,
        "eventID": event.event_id,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": event.account,
        "eventCategory": "Management",
    }
    if event.error_code:
        detail |= {"errorCode": event.error_code, "errorMessage": f"{event.error_code} (sandbox)"}
    if event.resources:
        detail["resources"] = [{"type": kind, "ARN": name} for kind, name in event.resources]
    return {
        "EventId": event.event_id,
        "EventName": event.event_name,
        "ReadOnly": str(event.read_only).lower(),
        "AccessKeyId": event.access_key_id,
        "EventTime": event.event_time.timestamp(),
        "EventSource": event.event_source,
        "Username": event.username,
        "Resources": [{"ResourceType": k, "ResourceName": n} for k, n in event.resources],
        "CloudTrailEvent": json.dumps(detail),
    }


def _recording(
    original: Callable[[IamResponse], Any],
    log: ActivityLog,
    event_name: str,
    parameters: tuple[str, ...],
) -> Callable[[IamResponse], Any]:
    def handler(self: IamResponse) -> Any:
        error_code = ""
        try:
            return original(self)
        except Exception as error:
            error_code = _error_code(error)
            raise
        finally:
            log.record_call(_call_event(self, event_name, parameters, error_code))

    return handler


def _error_code(error: Exception) -> str:
    """Return the AWS error code a moto exception is answered with."""
    code = getattr(error, "error_type", None) or getattr(error, "code", None)
    return code if isinstance(code, str) and code else type(error).__name__


def _call_event(
    response: IamResponse, event_name: str, parameters: tuple[str, ...], error_code: str
) -> TrailEvent:
    """Describe an IAM call the sandbox answered as the CloudTrail event AWS would log."""
    from moto.sts.models import sts_backends

    access_key = response.get_access_key()
    sts = sts_backends[response.current_account][response.partition]
    _, caller_arn, _ = sts.get_caller_identity(access_key, response.region)
    assumed = sts.get_assumed_role_from_access_key(access_key)
    values = {name: str(response._get_param(name) or "") for name in parameters}
    request = {name[0].lower() + name[1:]: value for name, value in values.items() if value}
    resources = []
    if values.get("RoleName"):
        resources.append(("AWS::IAM::Role", values["RoleName"]))
    if values.get("UserName"):
        resources.append(("AWS::IAM::User", values["UserName"]))
    if values.get("PolicyArn"):
        resources.append(("AWS::IAM::Policy", values["PolicyArn"]))
    return TrailEvent(
        account=response.current_account,
        principal_arn=caller_arn,
        username=caller_arn.rsplit("/", 1)[-1],
        event_name=event_name,
        event_source="iam.amazonaws.com",
        event_time=datetime.now(UTC),
        resources=tuple(resources),
        read_only=False,
        region=IAM_REGION,
        access_key_id=access_key,
        request_parameters=request,
        issuer_arn=assumed.role_arn if assumed else "",
        error_code=error_code,
    )
