"""Which Microsoft 365 tenants Leash serves, and the tenant check every inbound activity passes."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
# How much of an unreadable tenant value goes into a log line.
_SHOWN = 64


def canonical_tenant(value: object) -> str | None:
    """Return a tenant id in its one spelling (lowercase GUID), or None if it is not one."""
    if isinstance(value, str) and _GUID.fullmatch(value):
        return value.lower()
    return None


def shown(value: object) -> str:
    """Return a tenant value as it may appear in a log line (quoted, bounded, one line)."""
    if value is None:
        return "none"
    return repr(str(value)[:_SHOWN])


@dataclass(frozen=True, slots=True)
class TenantRefusal:
    """Why an activity was refused, with the tenant values it carried (for the log)."""

    reason: str
    conversation: str
    channel_data: str


@dataclass(frozen=True, slots=True)
class Tenants:
    """The tenants whose activities Leash serves; no tenants listed means any tenant."""

    served: frozenset[str] = frozenset()

    @classmethod
    def of(
        cls,
        *,
        app_type: Literal["MultiTenant", "SingleTenant"],
        app_tenant: str | None,
        listed: Iterable[str],
    ) -> Tenants:
        """SingleTenant: the app's own tenant; MultiTenant: those listed, else any tenant."""
        chosen = [app_tenant or ""] if app_type == "SingleTenant" else list(listed)
        served = {canonical_tenant(tenant) for tenant in chosen}
        if None in served:
            # Settings validates these GUIDs; an empty SingleTenant id must not mean "any".
            raise ValueError(f"not Entra tenant ids: {chosen}")
        return cls(served=frozenset(tenant for tenant in served if tenant is not None))

    @property
    def any_tenant(self) -> bool:
        return not self.served

    def refusal(self, activity: Mapping[str, object]) -> TenantRefusal | None:
        """Say why an activity (its JSON) is refused, or None when its tenant is served.

        Teams names the tenant twice, in `conversation.tenantId` and `channelData.tenant.id`:
        both must be present, agree, and be served.
        """
        in_conversation = _field(activity, "conversation", "tenantId")
        in_channel_data = _field(activity, "channelData", "tenant", "id")
        conversation = canonical_tenant(in_conversation)
        channel_data = canonical_tenant(in_channel_data)
        if in_conversation is None or in_channel_data is None:
            reason = "no tenant"
        elif conversation is None or channel_data is None:
            reason = "a tenant that is not a GUID"
        elif conversation != channel_data:
            reason = "two different tenants"
        elif self.served and conversation not in self.served:
            reason = "a tenant this bot does not serve"
        else:
            return None
        return TenantRefusal(reason, shown(in_conversation), shown(in_channel_data))


def _field(activity: Mapping[str, object], *path: str) -> object:
    """The value at a path of nested JSON objects, or None where the path breaks off."""
    value: object = activity
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value
