"""Seed once, then restore a copy: resetting the sandbox without replaying ~50 API calls.

moto runs in this process, so the state seeding leaves in its IAM, STS and Organizations
backends (and in the sandbox's activity log) can be copied after the first seed and put back
on every later reset. Seeding stamps dates relative to "now", so a copy older than
`MAX_AGE_SECONDS` is dropped and the sandbox seeds afresh.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Any

from cloud.sandbox.aws.activity import ActivityLog, ServiceUse, TrailEvent
from cloud.sandbox.aws.seed import DemoOrganization

# Every moto backend the seed writes to.
SEEDED_BACKENDS = ("iam", "organizations", "sts")
MAX_AGE_SECONDS = 600.0


def _backend(name: str) -> Any:
    from moto.backends import get_backend

    return get_backend(name)  # type: ignore[call-overload]


@dataclass(frozen=True, slots=True)
class SeededState:
    """What the demo seed left behind, copied."""

    backends: dict[str, dict[str, Any]]
    organization: DemoOrganization
    activity: tuple[dict[str, dict[str, ServiceUse]], list[TrailEvent]]
    taken_at: float

    @classmethod
    def take(cls, organization: DemoOrganization, activity: ActivityLog) -> SeededState:
        """Copy the freshly seeded state."""
        backends = {name: copy.deepcopy(dict(_backend(name))) for name in SEEDED_BACKENDS}
        return cls(backends, organization, activity.seeded_state(), time.monotonic())

    @property
    def fresh(self) -> bool:
        return time.monotonic() - self.taken_at < MAX_AGE_SECONDS

    def restore(self, activity: ActivityLog) -> DemoOrganization:
        """Put the seeded state back (on a just-reset moto) and return its organisation."""
        for name, accounts in self.backends.items():
            backend = _backend(name)
            backend.clear()
            for account_id, account_backend in copy.deepcopy(accounts).items():
                backend[account_id] = account_backend
                # Registers the backend with moto (it finds the account there), so that
                # moto's next reset clears it as it clears one it filled itself.
                backend._create_account_specific_backend(account_id)
        activity.restore_seeded(self.activity)
        return self.organization
