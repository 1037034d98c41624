"""The cloud IAM manifests agree with the code: least privilege on AWS, GCP and Azure.

The Kubernetes manifests and the Dockerfile: tests/test_k8s_manifests.py.
"""

from __future__ import annotations

import copy
import inspect
import json
import re
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import boto3
import yaml

from cloud.aws import AwsProvider
from cloud.aws.inline import LEASH_POLICY_PATH
from cloud.aws.permissions import GRANT_ROLE_PERMISSIONS, READ_ROLE_PERMISSIONS
from cloud.aws.provider import ACCOUNT_PERMISSIONS, ORGANIZATIONS_PERMISSIONS
from cloud.aws.quarantine import QUARANTINE_TAGS
from cloud.base import GRANT_ARTEFACT_PREFIX

ROOT = Path(__file__).resolve().parents[1]
AWS_DIR = ROOT / "manifests" / "aws"
K8S_DIR = ROOT / "manifests" / "k8s"

MANAGEMENT_POLICY = "leash-management-policy.json"
READ_POLICY = "leash-read-only-role.json"
GRANT_POLICY = "leash-grant-manager-role.json"
PERMISSION_POLICIES = (MANAGEMENT_POLICY, READ_POLICY, GRANT_POLICY)
MEMBER_TRUST_POLICIES = ("leash-read-only-trust.json", "leash-grant-manager-trust.json")
IRSA_TRUST_POLICY = "leash-management-trust-irsa.json"
CFN_TEMPLATE = "member-roles.cfn.yaml"

LEASH_ROLE = "LeashService"
LEASH_ACCOUNT_PLACEHOLDER = "${LEASH_ACCOUNT_ID}"
# Primitives that would let Leash mint credentials or take over identities it grants to.
ESCALATION_ACTIONS = (
    "iam:CreateAccessKey",
    "iam:CreateLoginProfile",
    "iam:UpdateLoginProfile",
    "iam:UpdateAssumeRolePolicy",
    "iam:PassRole",
    "iam:CreateRole",
    "iam:AddUserToGroup",
    "iam:PutGroupPolicy",
    "iam:AttachGroupPolicy",
    "iam:SetDefaultPolicyVersion",
    "iam:DeleteRolePermissionsBoundary",
    "iam:DeleteUserPermissionsBoundary",
    "sts:AssumeRoleWithWebIdentity",
)
# Attaching a managed policy is an escalation too, unless it can only be one of Leash's own
# deny policies (restrict, quarantine), which live under LEASH_POLICY_PATH.
ATTACH_ACTIONS = (
    "iam:AttachRolePolicy",
    "iam:AttachUserPolicy",
    "iam:DetachRolePolicy",
    "iam:DetachUserPolicy",
)
LEASH_POLICY_ARNS = f"arn:aws:iam::*:policy{LEASH_POLICY_PATH}*"
# Writing a customer-managed policy: only Leash's own, under LEASH_POLICY_PATH.
POLICY_WRITE_ACTIONS = (
    "iam:CreatePolicy",
    "iam:DeletePolicy",
    "iam:CreatePolicyVersion",
    "iam:DeletePolicyVersion",
)
# What the grant role reads about managed policies besides GetPolicy (which restrict needs on
# every attached policy, to fingerprint their default versions): only Leash's own.
LEASH_POLICY_READS = ("iam:GetPolicyVersion", "iam:ListPolicyVersions")
# Leash's writes to its own roles would raise its own privileges.
ROLE_WRITE_ACTIONS = (
    "iam:PutRolePolicy",
    "iam:DeleteRolePolicy",
    "iam:AttachRolePolicy",
    "iam:DetachRolePolicy",
    "iam:TagRole",
    "iam:UntagRole",
)

Document = dict[str, Any]


# Reading the files.


def _json(path: Path) -> Document:
    loaded = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict), f"{path.name}: not a JSON object"
    return loaded


def _policy(name: str) -> Document:
    return _json(AWS_DIR / name)


def _yaml_documents(path: Path) -> list[Document]:
    documents = [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]
    for document in documents:
        assert isinstance(document, dict), f"{path.name}: a YAML document is not a mapping"
    return documents


@cache
def _kubernetes() -> dict[tuple[str, str], Document]:
    """Every Kubernetes object in manifests/k8s, by (kind, name)."""
    found: dict[tuple[str, str], Document] = {}
    for path in sorted(K8S_DIR.glob("*.yaml")):
        for document in _yaml_documents(path):
            key = (str(document["kind"]), str(document.get("metadata", {}).get("name", "")))
            assert key not in found, f"{path.name}: {key} defined twice"
            found[key] = document
    return found


def _k8s(kind: str, name: str = "leash") -> Document:
    return _kubernetes()[(kind, name)]


# IAM semantics.


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    assert isinstance(value, list), value
    assert all(isinstance(item, str) for item in value), value
    return list(value)


def _statements(document: Mapping[str, Any]) -> list[Document]:
    statements = document["Statement"]
    return [statements] if isinstance(statements, dict) else list(statements)


def _iam_matches(pattern: str, action: str) -> bool:
    """IAM action matching: `*` is any run of characters, `?` one, case-insensitive."""
    regex = "".join(
        ".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern
    )
    return re.fullmatch(regex, action, flags=re.IGNORECASE) is not None


def _allowed(documents: Iterable[Mapping[str, Any]]) -> list[str]:
    """The action patterns of every Allow statement."""
    patterns: list[str] = []
    for document in documents:
        for statement in _statements(document):
            if statement["Effect"] == "Allow":
                assert "NotAction" not in statement, "an Allow with NotAction allows the rest"
                patterns.extend(_strings(statement["Action"]))
    return patterns


def _allows(documents: Iterable[Mapping[str, Any]], action: str) -> bool:
    return any(_iam_matches(pattern, action) for pattern in _allowed(documents))


def _allowing(document: Mapping[str, Any], action: str) -> list[Document]:
    """The Allow statements of a document whose Action matches `action`."""
    return [
        statement
        for statement in _statements(document)
        if statement["Effect"] == "Allow"
        and any(_iam_matches(pattern, action) for pattern in _strings(statement["Action"]))
    ]


def _only_leash_policies(statement: Mapping[str, Any]) -> bool:
    """Say whether a statement's Condition limits `iam:PolicyARN` to Leash's own policies.

    Conditions are ANDed, so others may sit beside it; the values of one key are ORed, so
    every value must be under Leash's path. `...IfExists` and set operators do not count.
    """
    for operator, keys in statement.get("Condition", {}).items():
        if operator not in ("ArnLike", "ArnEquals"):
            continue
        for key, values in keys.items():
            if key.lower() == "iam:policyarn" and all(
                value.startswith(LEASH_POLICY_ARNS.removesuffix("*")) for value in _strings(values)
            ):
                return True
    return False


def _attachments_of_any_policy(document: Mapping[str, Any]) -> list[str]:
    """Name (`<action> in <Sid>`) each allow to attach or detach a policy other than Leash's."""
    return [
        f"{action} in {statement.get('Sid', '?')}"
        for action in ATTACH_ACTIONS
        for statement in _allowing(document, action)
        if not _only_leash_policies(statement)
    ]


def _resources_of(document: Mapping[str, Any], action: str) -> list[str]:
    found: list[str] = []
    for statement in _allowing(document, action):
        assert "NotResource" not in statement, "an Allow with NotResource allows the rest"
        found.extend(_strings(statement["Resource"]))
    return found


def _action_set(document: Mapping[str, Any]) -> set[str]:
    return set(_allowed([document]))


def _without_sid(statement: Mapping[str, Any]) -> Document:
    return {key: value for key, value in statement.items() if key != "Sid"}


def _required() -> tuple[str, ...]:
    def no_aws() -> boto3.Session:
        raise AssertionError("building AwsProvider or listing its permissions called AWS")

    return AwsProvider(session_factory=no_aws).required_permissions()


def _default(parameter: str) -> str:
    value = inspect.signature(AwsProvider.__init__).parameters[parameter].default
    assert isinstance(value, str)
    return value


def _role_arn(account: str, role: str) -> str:
    return f"arn:aws:iam::{account}:role/{role}"


# (a) everything the provider needs is allowed.


def test_the_matcher_follows_iam_wildcards_and_case() -> None:
    assert _iam_matches("iam:GetRole", "IAM:getrole")
    assert _iam_matches("iam:Get*", "iam:GetRolePolicy")
    assert _iam_matches("iam:?etRole", "iam:GetRole")
    assert _iam_matches("*", "organizations:ListAccounts")
    assert not _iam_matches("iam:Get*", "iam:PutRolePolicy")
    assert not _iam_matches("iam:GetRole", "iam:GetRolePolicy")
    assert not _iam_matches("s3:*", "iam:GetRole")


def test_the_manifests_allow_every_action_the_provider_needs() -> None:
    required = _required()
    assert required, "AwsProvider names no permissions"
    policies = [_policy(name) for name in PERMISSION_POLICIES]
    missing = [action for action in required if not _allows(policies, action)]
    assert not missing, f"manifests/aws does not allow: {missing}"


def test_each_role_carries_what_its_caller_uses() -> None:
    """Member roles split reading (discovery, usage) from writing (grants, enforcement)."""
    read, grant, management = (
        _policy(READ_POLICY),
        _policy(GRANT_POLICY),
        _policy(MANAGEMENT_POLICY),
    )
    assert _action_set(read) == set(READ_ROLE_PERMISSIONS)
    assert _action_set(grant) == set(GRANT_ROLE_PERMISSIONS)
    expected = {
        *ACCOUNT_PERMISSIONS,
        *ORGANIZATIONS_PERMISSIONS,
        *READ_ROLE_PERMISSIONS,
        *GRANT_ROLE_PERMISSIONS,
    }
    assert _action_set(management) == expected


def test_the_leash_role_works_its_own_account_as_the_member_roles_do() -> None:
    """In its home account the Leash role has the member roles' statements, no looser ones."""
    own = [_without_sid(statement) for statement in _statements(_policy(MANAGEMENT_POLICY))]
    members = [
        _without_sid(statement)
        for name in (READ_POLICY, GRANT_POLICY)
        for statement in _statements(_policy(name))
    ]
    missing = [statement for statement in members if statement not in own]
    assert not missing, f"{MANAGEMENT_POLICY} lacks member-role statements: {missing}"
    account_actions = {*ACCOUNT_PERMISSIONS, *ORGANIZATIONS_PERMISSIONS}
    for statement in own:
        if statement not in members:
            assert statement["Effect"] == "Allow"
            assert set(_strings(statement["Action"])) <= account_actions, statement


# (b) nothing the provider does not need.


def test_the_manifests_allow_nothing_the_provider_does_not_need() -> None:
    required = {action.lower() for action in _required()}
    for name in PERMISSION_POLICIES:
        for pattern in _allowed([_policy(name)]):
            assert "*" not in pattern, f"{name}: wildcard action {pattern}"
            assert "?" not in pattern, f"{name}: wildcard action {pattern}"
            assert pattern.lower() in required, f"{name}: {pattern} is not used by AwsProvider"


def test_no_role_can_mint_credentials_or_take_over_identities() -> None:
    policies = [_policy(name) for name in PERMISSION_POLICIES]
    for action in ESCALATION_ACTIONS:
        assert not _allows(policies, action), action
    for name, policy in zip(PERMISSION_POLICIES, policies, strict=True):
        assert not _attachments_of_any_policy(policy), name


def test_leash_attaches_and_detaches_only_its_own_policies() -> None:
    """Attach/detach is allowed, but only with `iam:PolicyARN` under Leash's policy path."""
    assert _attachments_of_any_policy(_policy(READ_POLICY)) == []
    assert not any(_allows([_policy(READ_POLICY)], action) for action in ATTACH_ACTIONS)
    for name in (GRANT_POLICY, MANAGEMENT_POLICY):
        policy = _policy(name)
        for action in ATTACH_ACTIONS:
            statements = _allowing(policy, action)
            assert statements, f"{name}: {action} is not allowed, restrict/quarantine need it"
            for statement in statements:
                condition = statement["Condition"]
                assert set(condition) == {"ArnLike"}, f"{name}: {statement['Sid']}"
                assert condition["ArnLike"] == {"iam:PolicyARN": LEASH_POLICY_ARNS}, name
        assert _attachments_of_any_policy(policy) == [], name

        # The check itself: without the condition, or with a wider one, it reports the statement.
        loosened, widened = copy.deepcopy(policy), copy.deepcopy(policy)
        for statement in _allowing(loosened, "iam:AttachRolePolicy"):
            del statement["Condition"]
        for statement in _allowing(widened, "iam:AttachRolePolicy"):
            statement["Condition"]["ArnLike"]["iam:PolicyARN"] = [
                LEASH_POLICY_ARNS,
                "arn:aws:iam::aws:policy/AdministratorAccess",
            ]
        for broken in (loosened, widened):
            assert "iam:AttachRolePolicy" in " ".join(_attachments_of_any_policy(broken)), name
    negated = {"ArnNotLike": {"iam:PolicyARN": LEASH_POLICY_ARNS}}
    if_exists = {"ArnLikeIfExists": {"iam:PolicyARN": LEASH_POLICY_ARNS}}
    for condition in (negated, if_exists):
        assert not _only_leash_policies({"Condition": condition}), condition


def test_policy_writes_are_scoped_to_the_leash_path() -> None:
    for name in (GRANT_POLICY, MANAGEMENT_POLICY):
        policy = _policy(name)
        for action in POLICY_WRITE_ACTIONS:
            resources = _resources_of(policy, action)
            assert resources == [LEASH_POLICY_ARNS], f"{name}: {action} on {resources}"
    grant = _policy(GRANT_POLICY)
    for action in LEASH_POLICY_READS:
        assert _resources_of(grant, action) == [LEASH_POLICY_ARNS], action
    for action in POLICY_WRITE_ACTIONS:
        assert not _allows([_policy(READ_POLICY)], action), action


def test_tag_writes_touch_only_leash_tags() -> None:
    """Quarantine writes leash:* tags; other tags may drive access (ABAC) and stay untouched."""
    assert all(key.startswith("leash:") for key in QUARANTINE_TAGS)
    for name in (GRANT_POLICY, MANAGEMENT_POLICY):
        policy = _policy(name)
        for action in ("iam:TagRole", "iam:UntagRole", "iam:TagUser", "iam:UntagUser"):
            statements = _allowing(policy, action)
            assert statements, f"{name}: {action} is not allowed, quarantine needs it"
            for statement in statements:
                condition = statement["Condition"]
                assert condition == {"ForAllValues:StringLike": {"aws:TagKeys": "leash:*"}}, name


def test_leash_assumes_only_its_two_member_roles() -> None:
    read_role, grant_role = _default("read_role_name"), _default("grant_role_name")
    resources: list[str] = []
    for statement in _statements(_policy(MANAGEMENT_POLICY)):
        if statement["Effect"] == "Allow" and any(
            _iam_matches(pattern, "sts:AssumeRole") for pattern in _strings(statement["Action"])
        ):
            resources.extend(_strings(statement["Resource"]))
    assert sorted(resources) == sorted([_role_arn("*", read_role), _role_arn("*", grant_role)])


def test_grant_writers_may_not_change_leash_roles() -> None:
    protected = [
        _role_arn("*", role)
        for role in (LEASH_ROLE, *map(_default, ("read_role_name", "grant_role_name")))
    ]
    for name in (MANAGEMENT_POLICY, GRANT_POLICY):
        denied: set[tuple[str, str]] = set()
        for statement in _statements(_policy(name)):
            if statement["Effect"] == "Deny":
                denied.update(
                    (action.lower(), resource)
                    for action in _strings(statement["Action"])
                    for resource in _strings(statement["Resource"])
                )
        for arn in (*protected, _role_arn("*", "aws-reserved/*")):
            for action in map(str.lower, ROLE_WRITE_ACTIONS):
                assert (action, arn) in denied, f"{name}: {action} on {arn} is not denied"


def test_member_roles_trust_only_the_leash_role() -> None:
    for name in MEMBER_TRUST_POLICIES:
        (statement,) = _statements(_policy(name))
        assert statement["Effect"] == "Allow"
        assert statement["Principal"] == {"AWS": _role_arn(LEASH_ACCOUNT_PLACEHOLDER, LEASH_ROLE)}
        assert _strings(statement["Action"]) == ["sts:AssumeRole"]


def test_irsa_trust_names_the_kubernetes_service_account() -> None:
    account = _k8s("ServiceAccount")
    subject = (
        f"system:serviceaccount:{account['metadata']['namespace']}:{account['metadata']['name']}"
    )
    (statement,) = _statements(_policy(IRSA_TRUST_POLICY))
    assert _strings(statement["Action"]) == ["sts:AssumeRoleWithWebIdentity"]
    conditions = statement["Condition"]["StringEquals"]
    assert conditions["${EKS_OIDC_ISSUER}:sub"] == subject
    assert conditions["${EKS_OIDC_ISSUER}:aud"] == "sts.amazonaws.com"
    annotation = account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
    assert annotation.endswith(f":role/{LEASH_ROLE}")


def _resolve(value: Any, parameters: Mapping[str, str]) -> Any:
    """Evaluate the template's Ref and Fn::Sub with the given parameter values."""
    if isinstance(value, list):
        return [_resolve(item, parameters) for item in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Ref"}:
        return parameters[value["Ref"]]
    if set(value) == {"Fn::Sub"}:
        return re.sub(r"\$\{([^}]+)\}", lambda match: parameters[match[1]], value["Fn::Sub"])
    return {key: _resolve(item, parameters) for key, item in value.items()}


def test_the_cloudformation_roles_match_the_json_files() -> None:
    (template,) = _yaml_documents(AWS_DIR / CFN_TEMPLATE)
    parameters = {
        name: str(spec.get("Default", "")) for name, spec in template["Parameters"].items()
    }
    parameters.update({"AWS::Partition": "aws", "LeashAccountId": LEASH_ACCOUNT_PLACEHOLDER})
    assert parameters["LeashRoleName"] == LEASH_ROLE
    roles = {
        resource["Properties"]["RoleName"]["Ref"]: _resolve(resource["Properties"], parameters)
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::IAM::Role"
    }
    expected = {"ReadRoleName": READ_POLICY, "GrantRoleName": GRANT_POLICY}
    assert set(roles) == set(expected)
    for parameter, policy_file in expected.items():
        role = roles[parameter]
        assert role["RoleName"] == _default(
            "read_role_name" if parameter == "ReadRoleName" else "grant_role_name"
        )
        (policy,) = role["Policies"]
        assert not policy["PolicyName"].startswith(GRANT_ARTEFACT_PREFIX)
        assert policy["PolicyDocument"] == _policy(policy_file), f"{parameter} != {policy_file}"
        trust_file = policy_file.replace("-role.json", "-trust.json")
        assert role["AssumeRolePolicyDocument"] == _policy(trust_file)


# (c) every file parses.


def test_every_json_manifest_parses() -> None:
    paths = sorted((ROOT / "manifests").rglob("*.json"))
    names = {path.name for path in paths}
    assert {*PERMISSION_POLICIES, *MEMBER_TRUST_POLICIES, IRSA_TRUST_POLICY} <= names
    for path in paths:
        document = _json(path)
        if path.parent == AWS_DIR:
            assert document["Version"] == "2012-10-17", path.name
            assert _statements(document), path.name


def test_every_yaml_manifest_parses() -> None:
    paths = sorted((ROOT / "manifests").rglob("*.yaml"))
    assert AWS_DIR / CFN_TEMPLATE in paths
    for path in paths:
        documents = _yaml_documents(path)
        assert documents, f"{path.name} is empty"


def test_the_gcp_custom_role_lists_exactly_what_the_gcp_provider_calls() -> None:
    from cloud.gcp import GcpProvider

    role = yaml.safe_load((ROOT / "manifests" / "gcp" / "leash-role.yaml").read_text())
    listed = set(role["includedPermissions"])
    scoped = GcpProvider(organization="organizations/1").required_permissions()
    assert set(scoped) - listed == set(), "the provider calls permissions the role lacks"
    assert listed - set(scoped) == set(), "the role grants permissions Leash never uses"
    assert not any("*" in permission for permission in listed)


def test_the_azure_custom_role_lists_exactly_what_the_azure_provider_calls() -> None:
    from cloud.azure import AzureProvider

    role = json.loads((ROOT / "manifests" / "azure" / "leash-role.json").read_text())
    needed = AzureProvider().required_permissions()
    arm = {action for action in needed if not action.startswith("graph:")}
    assert set(role["Actions"]) == arm
    assert not role["DataActions"]
    graph = [action.removeprefix("graph:") for action in needed if action.startswith("graph:")]
    assert all(permission in role["Description"] for permission in graph)
    assert not any("*" in action for action in role["Actions"])
