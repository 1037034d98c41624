"""What every Azure operation works with, and what one principal holds in a subscription."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from cloud.azure import pim
from cloud.azure.assignments import Assignment, list_assignments, within
from cloud.azure.clients import AzureClients
from cloud.azure.errors import is_pim_unlicensed
from cloud.azure.roles import RoleCatalog
from cloud.base import CloudError, IdentityRef


@dataclass(frozen=True, slots=True)
class Holdings:
    """A principal's role assignments: its own, and those that carry Leash's grants."""

    subscription_id: str
    own: tuple[Assignment, ...]
    grant_assignments: tuple[Assignment, ...]  # plain assignments marked `leash-grant-*`
    pim_assignments: tuple[Assignment, ...]  # the assignments PIM keeps for Leash's schedules
    pim_grants: tuple[pim.PimGrant, ...]

    @property
    def removable(self) -> tuple[Assignment, ...]:
        """Return its own assignments inside the subscription (those above are not Leash's)."""
        return tuple(a for a in self.own if within(self.subscription_id, a.scope))

    @property
    def above(self) -> tuple[Assignment, ...]:
        """Return its own assignments above the subscription (management groups, tenant)."""
        return tuple(a for a in self.own if not within(self.subscription_id, a.scope))

    def fingerprint(self) -> str:
        """Hash its own assignments (role, scope, name), Leash's grants left out."""
        own = sorted([a.role_guid, a.scope.rstrip("/").lower(), a.name.lower()] for a in self.own)
        payload = json.dumps({"subscription": self.subscription_id, "own": own})
        return hashlib.sha256(payload.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Context:
    """The clients, the role catalogue, whether to use PIM, and the clock."""

    clients: AzureClients
    roles: RoleCatalog
    use_pim: bool
    clock: Callable[[], datetime]
    _pim_answers: dict[str, bool] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def pim_available(self, subscription_id: str) -> bool:
        """Say whether grants in the subscription go through PIM (asked once per subscription)."""
        if not self.use_pim:
            return False
        with self._lock:
            known = self._pim_answers.get(subscription_id)
        if known is None:
            known = pim.is_available(self.clients, subscription_id)
            self.remember_pim(subscription_id, available=known)
        return known

    def remember_pim(self, subscription_id: str, *, available: bool) -> None:
        """Record what PIM said about a subscription (a licence error at grant time, say)."""
        with self._lock:
            self._pim_answers[subscription_id] = available

    def live_pim_grants(self, subscription_id: str, principal_id: str | None) -> list[pim.PimGrant]:
        """Return Leash's live PIM grants; none without PIM (off, or no licence)."""
        if not self.use_pim:
            return []
        try:
            return pim.live_grants(self.clients, subscription_id, principal_id, now=self.clock())
        except CloudError as error:
            if is_pim_unlicensed(error):
                self.remember_pim(subscription_id, available=False)
                return []
            raise

    def holdings(self, identity: IdentityRef) -> Holdings:
        """Read the principal's assignments and Leash's live grants in its subscription."""
        sid = identity.account
        grants = tuple(self.live_pim_grants(sid, identity.native_id))
        keys = {grant.key() for grant in grants}
        listed = list_assignments(self.clients, sid, principal_id=identity.native_id)
        return Holdings(
            subscription_id=sid,
            own=tuple(a for a in listed if a.grant_id is None and a.key() not in keys),
            grant_assignments=tuple(a for a in listed if a.grant_id is not None),
            pim_assignments=tuple(a for a in listed if a.grant_id is None and a.key() in keys),
            pim_grants=grants,
        )

    def spelled(self, assignment: Assignment, subscription_id: str) -> str:
        """Spell an assignment as `<role name> @ <scope>` (discovery's attached policy names)."""
        role = self.roles.name_of(subscription_id, assignment.role_definition_id)
        return f"{role} @ {assignment.scope}"
