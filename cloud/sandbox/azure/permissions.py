"""The Azure RBAC operation ARM checks for a request, and the Graph permission for Graph's.

ARM derives the operation from the request itself: the resource type is the namespace after the
last `/providers/` (`Microsoft.Resources` without one) followed by the path's type segments,
and the verb gives the last part (GET read, PUT/PATCH write, DELETE delete, POST on an action
segment `<action>/action`). So `PUT .../providers/Microsoft.Authorization/roleAssignments/{id}`
is `Microsoft.Authorization/roleAssignments/write` and `GET .../providers/Microsoft.Insights/
eventtypes/management/values` is `Microsoft.Insights/eventtypes/values/read`.
Graph permissions are the least-privileged application permission its reference names, spelled
`graph:<permission>` as the Azure provider spells them. A request neither rule knows gets an
`unknown(...)` name, which no manifest grants: the manifest check then reports it.
"""

from __future__ import annotations

from collections.abc import Mapping

GRAPH_PREFIX = "graph:"
_VERBS = {"GET": "read", "HEAD": "read", "PUT": "write", "PATCH": "write", "DELETE": "delete"}
# (verb, first Graph path segment after /v1.0/) -> application permission.
_GRAPH_PERMISSIONS: Mapping[tuple[str, str], str] = {
    ("GET", "serviceprincipals"): "Application.Read.All",
    ("POST", "directoryobjects"): "Directory.Read.All",  # directoryObjects/getByIds
}


def graph_permission(verb: str, path: str) -> str:
    """Return the Graph application permission for `verb path` (path under /v1.0/)."""
    segments = [segment for segment in path.split("/") if segment]
    collection = segments[1].split("(", 1)[0].lower() if len(segments) > 1 else ""
    known = _GRAPH_PERMISSIONS.get((verb.upper(), collection), f"unknown({verb} {path})")
    return GRAPH_PREFIX + known


def arm_operation(verb: str, path: str) -> str:
    """Return the RBAC operation ARM checks for `verb path` (a path without its query)."""
    segments = [segment for segment in path.split("/") if segment]
    lowered = [segment.lower() for segment in segments]
    if "providers" in lowered:
        at = len(lowered) - 1 - lowered[::-1].index("providers")
        namespace, rest = segments[at + 1], segments[at + 2 :]
    else:
        namespace, rest = "Microsoft.Resources", segments
    types = rest[0::2]  # type/name/type/name...: the names sit at odd positions
    if verb.upper() == "POST":
        return "/".join([namespace, *types, "action"])
    return "/".join([namespace, *types, _VERBS.get(verb.upper(), f"unknown({verb})")])


def azure_permission(verb: str, path: str, *, is_graph: bool) -> str:
    """Return what Azure authorizes for `verb path`: a Graph permission or an RBAC operation."""
    return graph_permission(verb, path) if is_graph else arm_operation(verb, path)
