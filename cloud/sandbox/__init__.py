"""The embedded sandbox: moto (AWS) in this process, extended and seeded with a demo
organisation, and optionally the GCP emulator beside it.

moto keeps its state in module globals, so every sandbox in one process shares it: run one.
Every seed is the same: the accounts keep fixed ids (`cloud.sandbox.aws.account_ids`), and
the identities, their tags and their recorded use are the same on every start (only dates
move with "now"), so a Leash database kept from an earlier run finds the same inventory.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType, TracebackType

import boto3

from cloud.sandbox.aws import access_advisor, account_ids, cloudtrail, cross_account
from cloud.sandbox.aws.activity import ActivityLog, JobStatus, ServiceUse, TrailEvent
from cloud.sandbox.aws.identity_dates import set_identity_dates
from cloud.sandbox.aws.seed import (
    DemoOrganization,
    SeededAccount,
    SeededIdentity,
    seed_demo_organization,
)
from cloud.sandbox.aws.seed_snapshot import SeededState
from cloud.sandbox.aws.server import MotoServer
from cloud.sandbox.azure import AzureEmulator
from cloud.sandbox.gcp import GcpEmulator

__all__ = [
    "ActivityLog",
    "DemoOrganization",
    "JobStatus",
    "Sandbox",
    "SeededAccount",
    "SeededIdentity",
    "ServiceUse",
    "TrailEvent",
]

REGION = "us-east-1"
ACCESS_KEY_ID = "testing"
SECRET_ACCESS_KEY = "testing"  # noqa: S105 - moto's conventional fake secret


class Sandbox:
    """A running AWS emulator that real boto3 clients (and AwsProvider) talk to."""

    region = REGION

    def __init__(
        self,
        *,
        server: MotoServer,
        activity: ActivityLog,
        gcp: GcpEmulator | None = None,
        azure: AzureEmulator | None = None,
    ) -> None:
        self._server = server
        self.activity = activity
        self.organization: DemoOrganization | None = None
        self._seed_copy: SeededState | None = None
        self.gcp = gcp
        self.azure = azure

    @classmethod
    def start(cls, *, seed: bool = True, gcp: bool = False, azure: bool = False) -> Sandbox:
        """Start moto on a free loopback port, extend it, and seed the demo organisation.

        With `gcp` / `azure`, that cloud's emulator starts too (seeded the same way) and
        `self.gcp` / `self.azure` holds it.
        """
        if "MOTO_ACCOUNT_ID" in os.environ:
            # moto would then put every request in that one account, whatever the credentials.
            raise RuntimeError("unset MOTO_ACCOUNT_ID: the sandbox needs moto's multi-account mode")
        activity = ActivityLog()
        # Patches moto's classes for this process; nothing happens at import time.
        cross_account.install()
        account_ids.install()
        access_advisor.install(activity)
        cloudtrail.install(activity)
        sandbox = cls(server=MotoServer.start(), activity=activity)
        try:
            if gcp:
                sandbox.gcp = GcpEmulator.start(seed=seed)
            if azure:
                sandbox.azure = AzureEmulator.start(seed=seed)
            if seed:
                sandbox.seed()
        except BaseException:
            sandbox.stop()
            raise
        return sandbox

    @property
    def moto(self) -> MotoServer:
        """Return the moto server: `moto.calls()` lists the AWS calls served since the reset."""
        return self._server

    @property
    def endpoint_url(self) -> str:
        return self._server.endpoint_url

    @property
    def env(self) -> Mapping[str, str]:
        """Return the environment an AWS SDK process needs to use this sandbox."""
        return MappingProxyType(
            {
                "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
                "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
                "AWS_DEFAULT_REGION": REGION,
                "AWS_ENDPOINT_URL": self.endpoint_url,
            }
        )

    @property
    def accounts(self) -> tuple[SeededAccount, ...]:
        """Return the seeded accounts, management first (empty before seeding)."""
        return self.organization.accounts if self.organization else ()

    @property
    def account_ids(self) -> tuple[str, ...]:
        return tuple(account.id for account in self.accounts)

    @property
    def identities(self) -> tuple[SeededIdentity, ...]:
        return self.organization.identities if self.organization else ()

    def account(self, name: str) -> SeededAccount:
        """Return the seeded account named `name` (platform, ml-prod, ml-dev)."""
        return self._seeded().account(name)

    def identity(self, name: str) -> SeededIdentity:
        """Return the seeded role or user named `name`."""
        return self._seeded().identity(name)

    def _seeded(self) -> DemoOrganization:
        if self.organization is None:
            raise LookupError("the sandbox has not been seeded")
        return self.organization

    def set_dates(
        self,
        identity: SeededIdentity,
        *,
        created_at: datetime | None = None,
        last_used_at: datetime | None = None,
    ) -> None:
        """Set when AWS says `identity` was created and last used (no AWS API can)."""
        set_identity_dates(
            identity.account.id,
            identity.kind,
            identity.name,
            created_at=created_at,
            last_used_at=last_used_at,
        )

    def session(self) -> boto3.Session:
        """Return a new boto3 session with the management account's credentials."""
        return boto3.Session(
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
            region_name=REGION,
        )

    def seed(self) -> DemoOrganization:
        """Create the demo organisation (on an empty sandbox), the same on every start."""
        self._server.seed_random(account_ids.RANDOM_SEED)
        self.organization = seed_demo_organization(
            session=self.session(), endpoint_url=self.endpoint_url, activity=self.activity
        )
        return self.organization

    def reset(self, *, seed: bool = True) -> None:
        """Forget every resource, fault and recorded activity; seed again unless told not to."""
        self._server.clear_faults()
        self._server.reset()
        self.activity.clear()
        self.organization = None
        if self.gcp is not None:
            self.gcp.reset()
        if self.azure is not None:
            self.azure.reset()
        if not seed:
            return
        if self._seed_copy is not None and self._seed_copy.fresh:
            self.organization = self._seed_copy.restore(self.activity)
            return
        self._seed_copy = SeededState.take(self.seed(), self.activity)

    def stop(self) -> None:
        """Stop the servers."""
        if self.gcp is not None:
            self.gcp.stop()
        if self.azure is not None:
            self.azure.stop()
        self._server.stop()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
