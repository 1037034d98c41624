"""The cloud operations the sandbox's emulators serve, named as each cloud authorizes them.

Every emulator (moto, the GCP and Azure emulators) reports each request it serves here as a
`CloudOperation`: the API operation, the permission the real cloud would check for it, and the
caller's user agent, which tells Leash's own calls (`leash/<version>`) from test seeding.
Observers (the test suite's manifest check) see every operation of every emulator in this
process, whichever sandbox served it and however often it was reset since.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from cloud.user_agent import is_leash


@dataclass(frozen=True, slots=True)
class CloudOperation:
    """One request an emulator served, with the permission the real cloud checks for it."""

    cloud: str  # "aws", "gcp", "azure"
    service: str  # "iam", "sts", "cloudresourcemanager", "recommender", "arm", "graph", ...
    operation: str  # the API's name: "DeleteRolePolicy", "projects.getIamPolicy", "PUT /..."
    # What the cloud authorizes: "iam:DeleteRolePolicy", "resourcemanager.projects.list",
    # "Microsoft.Authorization/roleAssignments/write", "graph:Application.Read.All"; "" when
    # the operation needs no permission (GCP testIamPermissions, a long-running operation's poll).
    permission: str
    user_agent: str
    # AWS: the role whose assumed-role credentials signed the call; "" for other credentials.
    caller_role: str = ""

    @property
    def by_leash(self) -> bool:
        """Say whether Leash's own clients made the call (their user agent names Leash)."""
        return is_leash(self.user_agent)


OperationObserver = Callable[[CloudOperation], None]

# Process-wide on purpose, as moto's backends are: an observer must see every emulator, also
# those a single test starts and stops, without the test handing them over.
_observers: list[OperationObserver] = []
_observers_lock = threading.Lock()


def observe(observer: OperationObserver) -> Callable[[], None]:
    """Call `observer` with every operation any emulator serves from now; return the undo."""
    with _observers_lock:
        _observers.append(observer)

    def stop() -> None:
        with _observers_lock:
            if observer in _observers:
                _observers.remove(observer)

    return stop


def publish(operation: CloudOperation) -> None:
    """Hand one served operation to every observer (called by the emulators)."""
    with _observers_lock:
        observers = tuple(_observers)
    for observer in observers:
        observer(operation)
