"""IAM v2 deny policies over REST, with writes answered as finished long-running operations."""

from __future__ import annotations

import base64
import copy
import re
import uuid
from urllib.parse import quote

from cloud.sandbox.gcp.cel_eval import syntax_error
from cloud.sandbox.gcp.rest import RestCall, Route, route
from cloud.sandbox.gcp.state import ApiError, GcpState, JsonObject, Status, World, page, timestamp

SERVICE = "iam"
CRM = "cloudresourcemanager.googleapis.com"
KIND = "denypolicies"
# Google's documented limits (https://cloud.google.com/iam/docs/deny-overview, the
# google.iam.v2 Policy reference): a display name of at most 63 characters, annotation keys
# of 63 and values of 255, and on each attachment point at most 500 deny policies holding
# together at most 500 deny rules.
MAX_DISPLAY_NAME = 63
MAX_ANNOTATION_KEY = 63
MAX_ANNOTATION_VALUE = 255
MAX_POLICIES = 500
MAX_RULES = 500
POLICY_TYPE = "type.googleapis.com/google.iam.v2.Policy"
METADATA_TYPE = "type.googleapis.com/google.iam.v2.PolicyOperationMetadata"
PRINCIPAL_PREFIXES = ("principal://", "principalSet://", "deleted:principal://")
_PERMISSION = re.compile(r"\*|[a-z0-9.-]+\.googleapis\.com/(\*|[A-Za-z0-9*]+(\.[A-Za-z0-9*]+)+)")
# Permissions Google's "Permissions supported in deny policies"
# (https://cloud.google.com/iam/docs/deny-permissions-support) leaves out, among those a deny
# writer is likely to try: deny policies cannot deny their own management, and the old
# serviceusage API-key permissions have no deny form (the API Keys API's apikeys.googleapis.com/
# keys.* do). The emulator knows only these; Google refuses any permission not on its list.
UNSUPPORTED_PERMISSIONS = frozenset(
    {
        *(f"iam.googleapis.com/denypolicies.{verb}" for verb in ("create", "update", "delete")),
        *(f"iam.googleapis.com/denypolicies.{verb}" for verb in ("get", "list")),
        *(f"serviceusage.googleapis.com/apiKeys.{verb}" for verb in ("create", "list", "get")),
        *(f"serviceusage.googleapis.com/apiKeys.{verb}" for verb in ("update", "delete")),
    }
)
# 3 to 63 characters: lower case letters, digits, '-' and '.', starting with a letter.
_POLICY_ID = re.compile(r"[a-z][a-z0-9.-]{2,62}")
_ATTACHMENT = r"(?P<attachment>[^/]+)"
_BASE = rf"/v2/policies/{_ATTACHMENT}/(?P<kind>[^/]+)"
_ONE = rf"{_BASE}/(?P<policy>[^/]+)"


def _resolve(world: World, attachment: str) -> tuple[str, str]:
    """Return the storage key ("projects/{id}") and the attachment point as names show it."""
    service, _, resource = attachment.partition("/")
    collection, _, ref = resource.partition("/")
    if service != CRM or collection not in ("projects", "folders", "organizations") or not ref:
        raise ApiError(
            Status.INVALID_ARGUMENT,
            f"Invalid attachment point {attachment!r}: expected "
            f"{CRM}/projects/PROJECT_ID (URL-encoded in the policy name).",
        )
    if collection == "projects":
        project = world.project(ref)
        if project is None:
            raise _denied(attachment)
        # Names come back with the project number, whichever the caller sent.
        return f"projects/{project.project_id}", f"{CRM}/projects/{project.number}"
    key = f"{collection}/{ref}"
    if key not in world.folders and key != world.organization.name:
        raise _denied(attachment)
    return key, f"{CRM}/{key}"


def _denied(attachment: str) -> ApiError:
    return ApiError(
        Status.PERMISSION_DENIED,
        f"Permission denied on attachment point {attachment!r} (or it may not exist).",
    )


def _check_kind(call: RestCall) -> None:
    if call.params["kind"] != KIND:
        raise ApiError(Status.INVALID_ARGUMENT, f"Unsupported policy kind: {call.params['kind']}.")


def deny_etag(state: GcpState) -> str:
    """Return a fresh deny-policy etag (base64 text, as IAM v2's look)."""
    return base64.b64encode(str(1_700_000_000_000_000_000 + state.sequence()).encode()).decode()


def _operation(world: World, policy: JsonObject, at: str) -> JsonObject:
    name = f"{policy['name']}/operations/{uuid.uuid4().hex}"
    operation = {
        "name": name,
        "metadata": {"@type": METADATA_TYPE, "createTime": at},
        "done": True,
        "response": {"@type": POLICY_TYPE, **copy.deepcopy(policy)},
    }
    world.operations[name] = operation
    return operation


def _invalid(field: str, message: str) -> ApiError:
    """Refuse a request field as Google does: INVALID_ARGUMENT with a BadRequest detail."""
    return ApiError(Status.INVALID_ARGUMENT, message, violations=((field, message),))


def _checked_fields(body: JsonObject) -> tuple[str, dict[str, str]]:
    """Return the display name and annotations of a policy body, refusing Google's refusals."""
    display_name = body.get("displayName", "")
    if not isinstance(display_name, str):
        raise _invalid("policy.display_name", "display_name must be a string.")
    if len(display_name) > MAX_DISPLAY_NAME:
        raise _invalid(
            "policy.display_name",
            f"The display name of a policy can be up to {MAX_DISPLAY_NAME} characters; "
            f"{display_name!r} has {len(display_name)}.",
        )
    annotations = body.get("annotations") or {}
    if not isinstance(annotations, dict):
        raise _invalid("policy.annotations", "annotations must be a map of strings.")
    for key, value in annotations.items():
        if len(str(key)) > MAX_ANNOTATION_KEY or len(str(value)) > MAX_ANNOTATION_VALUE:
            raise _invalid(
                "policy.annotations",
                f"Annotation keys can be up to {MAX_ANNOTATION_KEY} characters and values up "
                f"to {MAX_ANNOTATION_VALUE}; {key!r} exceeds that.",
            )
    return display_name, {str(k): str(v) for k, v in annotations.items()}


def _check_totals(policies: dict[str, JsonObject], policy_id: str, rules: int) -> None:
    """Refuse a write that takes the attachment point past 500 policies or 500 rules."""
    others = {key: policy for key, policy in policies.items() if key != policy_id}
    if len(others) + 1 > MAX_POLICIES:
        raise ApiError(
            Status.FAILED_PRECONDITION,
            f"An attachment point can have at most {MAX_POLICIES} deny policies; the limit "
            "would be exceeded.",
        )
    total = rules + sum(len(policy.get("rules", [])) for policy in others.values())
    if total > MAX_RULES:
        raise ApiError(
            Status.FAILED_PRECONDITION,
            f"The deny policies of an attachment point can hold at most {MAX_RULES} rules in "
            f"all; this write would make {total}, which exceeds the limit.",
        )


def _checked_rules(rules: object) -> list[JsonObject]:
    if not isinstance(rules, list):
        raise ApiError(Status.INVALID_ARGUMENT, "rules must be a list.")
    if len(rules) > MAX_RULES:
        raise _invalid(
            "policy.rules",
            f"A deny policy has at most {MAX_RULES} rules; this one has {len(rules)}.",
        )
    for number, rule in enumerate(rules, start=1):
        deny = rule.get("denyRule") if isinstance(rule, dict) else None
        if not isinstance(deny, dict):
            raise ApiError(Status.INVALID_ARGUMENT, f"Rule {number} has no denyRule.")
        if not deny.get("deniedPrincipals") or not deny.get("deniedPermissions"):
            raise ApiError(
                Status.INVALID_ARGUMENT,
                f"Rule {number} needs deniedPrincipals and deniedPermissions.",
            )
        for principal in [*deny["deniedPrincipals"], *deny.get("exceptionPrincipals", [])]:
            if not str(principal).startswith(PRINCIPAL_PREFIXES):
                raise ApiError(
                    Status.INVALID_ARGUMENT,
                    f"Invalid principal {principal!r} in rule {number}: deny policies use "
                    "principal identifiers such as "
                    "principal://iam.googleapis.com/projects/-/serviceAccounts/EMAIL.",
                )
        for permission in [*deny["deniedPermissions"], *deny.get("exceptionPermissions", [])]:
            if not _PERMISSION.fullmatch(str(permission)):
                raise ApiError(
                    Status.INVALID_ARGUMENT,
                    f"Invalid permission {permission!r} in rule {number}: deny policies name "
                    "permissions as SERVICE.googleapis.com/RESOURCE.ACTION, e.g. "
                    "iam.googleapis.com/serviceAccountKeys.create.",
                )
            if permission in UNSUPPORTED_PERMISSIONS:
                raise _invalid(
                    "policy.rules",
                    f"Permission {permission} is not supported in deny policies (rule {number}); "
                    "see https://cloud.google.com/iam/docs/deny-permissions-support.",
                )
        expression = (deny.get("denialCondition") or {}).get("expression")
        problem = syntax_error(expression) if expression else None
        if problem:
            raise ApiError(
                Status.INVALID_ARGUMENT, f"Rule {number} has an invalid denialCondition: {problem}"
            )
    return copy.deepcopy(rules)


def _list(state: GcpState, call: RestCall) -> JsonObject:
    _check_kind(call)
    with state.locked() as world:
        key, _ = _resolve(world, call.params["attachment"])
        stored = sorted(world.deny_policies.get(key, {}).items())
        # ListPolicies shows metadata only: rules are left out.
        items = [{k: v for k, v in p.items() if k != "rules"} for _, p in stored]
    chunk, following = page(
        items,
        size=call.query.get("pageSize"),
        token=call.query.get("pageToken"),
        default=100,
        maximum=1000,
    )
    answer: JsonObject = {"policies": chunk}
    if following:
        answer["nextPageToken"] = following
    return answer


def _get(state: GcpState, call: RestCall) -> JsonObject:
    _check_kind(call)
    with state.locked() as world:
        return copy.deepcopy(_stored(world, call))


def _stored(world: World, call: RestCall) -> JsonObject:
    key, _ = _resolve(world, call.params["attachment"])
    policy = world.deny_policies.get(key, {}).get(call.params["policy"])
    if policy is None:
        raise ApiError(Status.NOT_FOUND, f"Policy {call.params['policy']!r} not found.")
    return policy


def _create(state: GcpState, call: RestCall) -> JsonObject:
    _check_kind(call)
    policy_id = call.query.get("policyId", "")
    if not _POLICY_ID.fullmatch(policy_id):
        raise _invalid(
            "policy_id",
            f"Invalid policy_id {policy_id!r}: 3 to 63 lowercase letters, digits, '-' or '.', "
            "starting with a letter.",
        )
    display_name, annotations = _checked_fields(call.body)
    rules = _checked_rules(call.body.get("rules", []))
    at = timestamp(state.now())
    with state.locked() as world:
        key, attachment = _resolve(world, call.params["attachment"])
        policies = world.deny_policies.setdefault(key, {})
        if policy_id in policies:
            raise ApiError(Status.ALREADY_EXISTS, f"Policy {policy_id!r} already exists.")
        _check_totals(policies, policy_id, len(rules))
        policy: JsonObject = {
            "name": f"policies/{quote(attachment, safe='')}/{KIND}/{policy_id}",
            "uid": str(uuid.uuid4()),
            "kind": "DenyPolicy",
            "displayName": display_name,
            "etag": deny_etag(state),
            "createTime": at,
            "updateTime": at,
            "rules": rules,
        }
        if annotations:
            policy["annotations"] = annotations
        policies[policy_id] = policy
        return _operation(world, policy, at)


def _update(state: GcpState, call: RestCall) -> JsonObject:
    _check_kind(call)
    display_name, annotations = _checked_fields(call.body)
    rules = _checked_rules(call.body.get("rules", []))
    at = timestamp(state.now())
    with state.locked() as world:
        policy = _stored(world, call)
        etag = call.body.get("etag")
        if etag and etag != policy["etag"]:
            raise ApiError(
                Status.ABORTED,
                "The policy was changed since it was read (etag mismatch); read it again.",
            )
        key, _ = _resolve(world, call.params["attachment"])
        _check_totals(world.deny_policies.get(key, {}), call.params["policy"], len(rules))
        policy["displayName"] = display_name
        policy["rules"] = rules
        if annotations:
            policy["annotations"] = annotations
        else:
            policy.pop("annotations", None)
        policy["etag"] = deny_etag(state)
        policy["updateTime"] = at
        return _operation(world, policy, at)


def _delete(state: GcpState, call: RestCall) -> JsonObject:
    _check_kind(call)
    at = timestamp(state.now())
    with state.locked() as world:
        policy = _stored(world, call)
        etag = call.query.get("etag")
        if etag and etag != policy["etag"]:
            raise ApiError(
                Status.ABORTED,
                "The policy was changed since it was read (etag mismatch); read it again.",
            )
        key, _ = _resolve(world, call.params["attachment"])
        del world.deny_policies[key][call.params["policy"]]
        return _operation(world, {**policy, "deleteTime": at}, at)


def _get_operation(state: GcpState, call: RestCall) -> JsonObject:
    with state.locked() as world:
        _, attachment = _resolve(world, call.params["attachment"])
        name = (
            f"policies/{quote(attachment, safe='')}/{call.params['kind']}/"
            f"{call.params['policy']}/operations/{call.params['operation']}"
        )
        if name not in world.operations:
            raise ApiError(Status.NOT_FOUND, f"Operation {name!r} not found.")
        return copy.deepcopy(world.operations[name])


_RESOURCE = "policies/{attachment}/{kind}"

ROUTES: list[Route] = [
    route("GET", _BASE, SERVICE, "policies.listPolicies", _RESOURCE, _list),
    route("POST", _BASE, SERVICE, "policies.createPolicy", _RESOURCE, _create),
    route("GET", _ONE, SERVICE, "policies.get", f"{_RESOURCE}/{{policy}}", _get),
    route("PUT", _ONE, SERVICE, "policies.update", f"{_RESOURCE}/{{policy}}", _update),
    route("DELETE", _ONE, SERVICE, "policies.delete", f"{_RESOURCE}/{{policy}}", _delete),
    route(
        "GET",
        rf"{_ONE}/operations/(?P<operation>[^/]+)",
        SERVICE,
        "policies.operations.get",
        f"{_RESOURCE}/{{policy}}/operations/{{operation}}",
        _get_operation,
    ),
]
