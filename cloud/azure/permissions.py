"""The Azure permissions the Azure provider calls, by purpose.

Leash's own principal needs the ARM actions on every scanned subscription (a custom role, or
User Access Administrator / Role Based Access Control Administrator for the writes plus
Reader and Monitoring Reader for the reads), and the Microsoft Graph application permission
`Application.Read.All` (spelled `graph:Application.Read.All`) to read service principals.
"""

from __future__ import annotations

from cloud.azure.usage import USAGE_PERMISSIONS

GRAPH_PREFIX = "graph:"
DISCOVERY_PERMISSIONS = (
    "Microsoft.Resources/subscriptions/read",
    "Microsoft.Authorization/roleAssignments/read",
    "Microsoft.Authorization/roleDefinitions/read",
    "Microsoft.ManagedIdentity/userAssignedIdentities/read",
    "Microsoft.Authorization/roleAssignmentScheduleRequests/read",
    "Microsoft.Authorization/roleAssignmentSchedules/read",
)
GRAPH_PERMISSIONS = (f"{GRAPH_PREFIX}Application.Read.All",)
ASSIGNMENT_WRITE_PERMISSIONS = (
    "Microsoft.Authorization/roleAssignments/write",
    "Microsoft.Authorization/roleAssignments/delete",
)
PIM_WRITE_PERMISSIONS = ("Microsoft.Authorization/roleAssignmentScheduleRequests/write",)


def unique(*groups: tuple[str, ...]) -> tuple[str, ...]:
    """Concatenate permission tuples, keeping the first occurrence of each."""
    return tuple(dict.fromkeys(permission for group in groups for permission in group))


READ_PERMISSIONS = unique(DISCOVERY_PERMISSIONS, USAGE_PERMISSIONS, GRAPH_PERMISSIONS)
WRITE_PERMISSIONS = unique(ASSIGNMENT_WRITE_PERMISSIONS, PIM_WRITE_PERMISSIONS)
