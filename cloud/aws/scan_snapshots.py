"""Account policy snapshots that live as long as a scan: read once per account, then dropped.

Outside a scan nothing is cached: a single identity's usage is always read from the cloud.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from cloud.aws.account_policies import AccountPolicies
from cloud.base import CloudError

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

log = logging.getLogger("leash.cloud.aws")


class ScanSnapshots:
    """One `AccountPolicies` read per account while at least one scan is open."""

    def __init__(self, client: Callable[[str], IAMClient]) -> None:
        self._client = client
        self._open = 0
        self._reads: dict[str, asyncio.Future[AccountPolicies | None]] = {}

    @asynccontextmanager
    async def open(self) -> AsyncIterator[None]:
        """Share snapshots until the last open scan ends; then forget them."""
        self._open += 1
        try:
            yield
        finally:
            self._open -= 1
            if not self._open:
                self._reads.clear()

    async def get(self, account: str) -> AccountPolicies | None:
        """The account's snapshot, read on first use; None outside a scan or if it failed."""
        if not self._open:
            return None
        read = self._reads.get(account)
        if read is None:
            read = asyncio.ensure_future(asyncio.to_thread(self._read, account))
            self._reads[account] = read
        # Shielded: one identity's read being cancelled must not cancel everyone's snapshot.
        return await asyncio.shield(read)

    def _read(self, account: str) -> AccountPolicies | None:
        try:
            iam = self._client(account)
        except CloudError as error:
            # Not in the account at all (AssumeRole refused): each identity's read fails the
            # same way, and the scan says so once for the account.
            log.debug("could not read the policies of account %s: %s", account, error)
            return None
        try:
            return AccountPolicies.read(iam)
        except (BotoCoreError, ClientError, CloudError) as error:
            log.warning(
                "could not read the policies of account %s at once (%s); reading role by role",
                account,
                error,
            )
            return None
