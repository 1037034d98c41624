"""Judge the permissions Leash's cloud calls needed against Leash's own manifests.

Which file must grant a permission: on AWS, calls signed with Leash's own credentials need
`leash-management-policy.json`, calls signed with credentials of an assumed `LeashReadOnly` /
`LeashGrantManager` need that role's policy (the moto recorder names the role behind each key),
any other assumed role the union of the three; on GCP `leash-role.yaml`'s includedPermissions;
on Azure `leash-role.json`'s Actions (wildcards, minus NotActions) for ARM operations and the
Graph application permissions its Description names for Graph calls. Only the actions count:
resources and conditions (e.g. `iam:PolicyARN` on attach) are tests/test_manifests.py's job.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cloud.aws import AwsProvider
from cloud.sandbox.operation_log import CloudOperation
from tests.test_manifests import _allowed, _iam_matches

MANIFESTS = Path(__file__).resolve().parents[1] / "manifests"
AWS_MANAGEMENT = "aws/leash-management-policy.json"
AWS_READ = "aws/leash-read-only-role.json"
AWS_GRANT = "aws/leash-grant-manager-role.json"
GCP_ROLE = "gcp/leash-role.yaml"
AZURE_ROLE = "azure/leash-role.json"
AZURE_GRAPH = "azure/leash-role.json (Graph, in its Description)"
GRAPH_PREFIX = "graph:"
# Graph application permission names: Application.Read.All, Directory.ReadWrite.All, ...
_GRAPH_NAME = re.compile(r"\b[A-Z][A-Za-z]*\.(?:Read|ReadWrite|Write)[A-Za-z]*(?:\.All)?\b")


@dataclass(frozen=True, slots=True, order=True)
class Exercised:
    """A permission one of Leash's calls needed, and (AWS) the role whose credentials it used."""

    cloud: str
    permission: str
    caller_role: str = ""

    def describe(self) -> str:
        """Return e.g. `aws iam:DeleteRolePolicy (as LeashGrantManager)`."""
        role = f" (as {self.caller_role})" if self.caller_role else ""
        return f"{self.cloud} {self.permission}{role}"


def exercised(operation: CloudOperation) -> Exercised | None:
    """Return what a served operation needed of Leash's manifests (None: not Leash's call)."""
    if not operation.by_leash or not operation.permission:
        return None
    return Exercised(operation.cloud, operation.permission, operation.caller_role)


@dataclass(frozen=True, slots=True)
class Grant:
    """What one manifest file grants: action patterns, and those it carves out."""

    manifest: str
    patterns: tuple[str, ...]
    matches: Callable[[str, str], bool]
    excluded: tuple[str, ...] = ()

    def allows(self, permission: str) -> bool:
        """Say whether the file grants `permission`."""
        granted = any(self.matches(pattern, permission) for pattern in self.patterns)
        return granted and not any(self.matches(out, permission) for out in self.excluded)


def _exactly(pattern: str, permission: str) -> bool:
    return pattern == permission  # GCP custom roles take no wildcards


def _role_default(parameter: str) -> str:
    value = inspect.signature(AwsProvider.__init__).parameters[parameter].default
    assert isinstance(value, str), parameter
    return value


class Manifests:
    """Leash's IAM manifests under one directory (normally the repository's manifests/)."""

    def __init__(self, root: Path = MANIFESTS) -> None:
        self.root = root
        azure = _json(root / AZURE_ROLE)
        graph = tuple(dict.fromkeys(_GRAPH_NAME.findall(str(azure.get("Description", "")))))
        self.grants: dict[str, Grant] = {
            name: Grant(name, tuple(dict.fromkeys(_allowed([_json(root / name)]))), _iam_matches)
            for name in (AWS_MANAGEMENT, AWS_READ, AWS_GRANT)
        }
        self.grants[GCP_ROLE] = Grant(GCP_ROLE, tuple(_gcp_permissions(root / GCP_ROLE)), _exactly)
        self.grants[AZURE_ROLE] = Grant(
            AZURE_ROLE,
            tuple(azure.get("Actions", [])),
            _iam_matches,  # Azure's `*` works as IAM's, case-insensitively
            excluded=tuple(azure.get("NotActions", [])),
        )
        self.grants[AZURE_GRAPH] = Grant(
            AZURE_GRAPH, tuple(f"{GRAPH_PREFIX}{name}" for name in graph), _iam_matches
        )
        self._member_roles = {
            _role_default("read_role_name"): AWS_READ,
            _role_default("grant_role_name"): AWS_GRANT,
        }

    def responsible(self, used: Exercised) -> tuple[Grant, ...]:
        """Return the files one of which must grant `used` (more than one: any will do)."""
        if used.cloud == "gcp":
            return (self.grants[GCP_ROLE],)
        if used.cloud == "azure":
            graph = used.permission.startswith(GRAPH_PREFIX)
            return (self.grants[AZURE_GRAPH if graph else AZURE_ROLE],)
        if not used.caller_role:
            return (self.grants[AWS_MANAGEMENT],)
        member = self._member_roles.get(used.caller_role)
        if member is not None:
            return (self.grants[member],)
        return tuple(self.grants[name] for name in (AWS_MANAGEMENT, AWS_READ, AWS_GRANT))


def missing(used: Iterable[Exercised], manifests: Manifests) -> list[Exercised]:
    """Return what Leash's calls needed that the responsible manifest does not grant."""
    return sorted(
        {
            need
            for need in used
            if not any(grant.allows(need.permission) for grant in manifests.responsible(need))
        }
    )


def never_used(used: Iterable[Exercised], manifests: Manifests) -> dict[str, list[str]]:
    """Return, per manifest file, the patterns no call of Leash's needed."""
    matched: dict[str, set[str]] = {name: set() for name in manifests.grants}
    for need in used:
        for grant in manifests.responsible(need):
            matched[grant.manifest].update(
                pattern for pattern in grant.patterns if grant.matches(pattern, need.permission)
            )
    unused = {
        name: [pattern for pattern in grant.patterns if pattern not in matched[name]]
        for name, grant in manifests.grants.items()
    }
    return {name: patterns for name, patterns in unused.items() if patterns}


def _json(path: Path) -> Mapping[str, Any]:
    loaded = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict), path
    return loaded


def _gcp_permissions(path: Path) -> list[str]:
    role = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(role, dict), path
    return [str(permission) for permission in role.get("includedPermissions", [])]
