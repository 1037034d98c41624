"""Discovery's shared fan-out: scan every scope (account, project, subscription) in parallel,
collecting each failing scope's error instead of failing the whole discovery."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TypeVar

from cloud.base.errors import CloudError
from cloud.base.values import DiscoveredIdentity, DiscoveryResult

Scope = TypeVar("Scope")


async def fan_out(
    scopes: Iterable[Scope],
    scan: Callable[[Scope], Awaitable[Sequence[DiscoveredIdentity]]],
    *,
    key: Callable[[Scope], str],
    failures: dict[str, str],
    max_concurrency: int | None = None,
) -> DiscoveryResult:
    """Scan each scope, at most `max_concurrency` at once (unbounded when None: the provider
    limits its own calls); a scope whose scan raises a CloudError is noted under `key(scope)`
    in `failures` and contributes no identities."""
    limit = asyncio.Semaphore(max_concurrency) if max_concurrency is not None else None

    async def one(scope: Scope) -> Sequence[DiscoveredIdentity]:
        try:
            if limit is None:
                return await scan(scope)
            async with limit:
                return await scan(scope)
        except CloudError as error:
            failures[key(scope)] = str(error)
            return []

    found = await asyncio.gather(*(one(scope) for scope in scopes))
    identities = tuple(identity for batch in found for identity in batch)
    return DiscoveryResult(identities=identities, failures=failures)
