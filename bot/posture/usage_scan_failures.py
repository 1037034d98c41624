"""Why a usage scan could not read identities, said once per account rather than per identity.

When Leash cannot get into an account (its read role is missing there, or does not trust it;
the cloud cannot be reached), every identity of that account fails the same way. The scan then
logs one WARNING line for the account (each identity's error goes to DEBUG) and its reply says
"could not read account X: <why>" once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from bot.store.tables import Identity
from cloud.base import (
    CloudAccessDeniedError,
    CloudConfigurationError,
    CloudError,
    CloudNotFoundError,
    CloudThrottledError,
    CloudUnavailableError,
)

log = logging.getLogger("leash.scan")

# What each cloud calls the scope an identity lives in.
SCOPE_WORDS = {"aws": "account", "gcp": "project", "azure": "subscription"}


@dataclass(frozen=True, slots=True)
class UnreadableAccount:
    """An account (project, subscription) none of whose identities' usage could be read."""

    provider: str
    account: str
    reason: str  # in words
    identities: tuple[str, ...]  # their names

    @property
    def scope(self) -> str:
        """ "account 111122223333", "project leash-demo-data", "subscription …"."""
        return f"{SCOPE_WORDS.get(self.provider, 'account')} {self.account}"


def in_words(error: Exception) -> str:
    """Why a cloud call failed, as a person would say it (the cloud's own code in brackets)."""
    code = f" ({error.code})" if isinstance(error, CloudError) and error.code else ""
    match error:
        case CloudAccessDeniedError():
            why = (
                "access denied: Leash's role there is missing, does not trust Leash, "
                "or lacks a permission"
            )
        case CloudNotFoundError():
            why = "not found: it no longer exists in the cloud"
        case CloudThrottledError():
            why = "the cloud throttled Leash's calls; the next scan tries again"
        case CloudUnavailableError():
            why = "the cloud could not be reached; the next scan tries again"
        case CloudConfigurationError():
            why = "Leash is not configured for it"
        case CloudError():
            why = "the cloud refused the call"
        case _:
            return str(error)
    return why + code


@dataclass(slots=True)
class ScanFailures:
    """The identities a scan could and could not read, by (provider, account)."""

    _read: set[tuple[str, str]] = field(default_factory=set)
    _failed: dict[tuple[str, str], list[tuple[str, Exception]]] = field(default_factory=dict)

    def read(self, identity: Identity) -> None:
        self._read.add((identity.provider, identity.account))

    def failed(self, identity: Identity, error: Exception) -> None:
        log.debug("usage of %s could not be read: %s", identity.name, error)
        key = (identity.provider, identity.account)
        self._failed.setdefault(key, []).append((identity.name, error))

    def unreadable(self) -> tuple[UnreadableAccount, ...]:
        """The accounts none of whose identities could be read, for a reason of the account's
        own (a missing identity is its own failure, not its account's)."""
        found = []
        for (provider, account), failures in sorted(self._failed.items()):
            if (provider, account) in self._read:
                continue
            if all(isinstance(error, CloudNotFoundError) for _, error in failures):
                continue
            error = next(e for _, e in failures if not isinstance(e, CloudNotFoundError))
            names = tuple(name for name, _ in failures)
            found.append(UnreadableAccount(provider, account, in_words(error), names))
        return tuple(found)

    def elsewhere(self) -> dict[str, str]:
        """Each identity that could not be read outside an unreadable account: why, in words."""
        unreadable = {(u.provider, u.account) for u in self.unreadable()}
        return {
            name: in_words(error)
            for key, failures in sorted(self._failed.items())
            if key not in unreadable
            for name, error in failures
        }

    def log_summary(self) -> None:
        """One WARNING line per account with failures (each identity's error is at DEBUG)."""
        unreadable = {(u.provider, u.account): u for u in self.unreadable()}
        for (provider, account), failures in sorted(self._failed.items()):
            if (provider, account) in unreadable:
                log.warning(
                    "usage scan: could not read %s %s in %s (%d identities): %s",
                    SCOPE_WORDS.get(provider, "account"),
                    account,
                    provider,
                    len(failures),
                    unreadable[(provider, account)].reason,
                )
            else:
                log.warning(
                    "usage scan: the usage of %d identities in %s %s could not be read, "
                    "e.g. %s: %s",
                    len(failures),
                    provider,
                    account,
                    failures[0][0],
                    in_words(failures[0][1]),
                )
