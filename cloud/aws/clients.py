"""Build boto3 clients lazily: one per account and role, refreshed before credentials expire."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

from cloud.aws.errors import translate

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_organizations import OrganizationsClient
    from mypy_boto3_sts import STSClient

SESSION_NAME = "leash"
# Assumed-role credentials are replaced this long before they expire.
REFRESH_MARGIN = timedelta(minutes=5)


@dataclass(slots=True)
class _CachedClient:
    client: IAMClient
    expires_at: datetime | None


class AccountClients:
    """Hand out IAM clients for any account, assuming a role in accounts other than home."""

    def __init__(
        self,
        *,
        session_factory: Callable[[], boto3.Session],
        endpoint_url: str | None,
        region: str,
        max_attempts: int,
    ) -> None:
        self._session_factory = session_factory
        self._endpoint_url = endpoint_url
        self._region = region
        self._config = Config(
            region_name=region,
            retries={"mode": "standard", "max_attempts": max_attempts},
        )
        # boto3 sessions are not thread-safe: create clients under this lock only.
        self._lock = threading.Lock()
        self._session: boto3.Session | None = None
        self._sts: STSClient | None = None
        self._organizations: OrganizationsClient | None = None
        self._home_account: str | None = None
        self._iam: dict[tuple[str, str], _CachedClient] = {}

    def _base_session(self) -> boto3.Session:
        if self._session is None:
            self._session = self._session_factory()
        return self._session

    def sts(self) -> STSClient:
        """Return the STS client of the base session."""
        with self._lock:
            if self._sts is None:
                self._sts = self._base_session().client(
                    "sts", endpoint_url=self._endpoint_url, config=self._config
                )
            return self._sts

    def organizations(self) -> OrganizationsClient:
        """Return the Organizations client of the base session."""
        with self._lock:
            if self._organizations is None:
                self._organizations = self._base_session().client(
                    "organizations", endpoint_url=self._endpoint_url, config=self._config
                )
            return self._organizations

    def home_account(self) -> str:
        """Return the account the base session's credentials belong to."""
        if self._home_account is None:
            try:
                identity = self.sts().get_caller_identity()
            except Exception as error:
                raise translate(
                    error, operation="GetCallerIdentity", target="Leash's own credentials"
                ) from error
            self._home_account = identity["Account"]
        return self._home_account

    def iam(self, account: str, *, role_name: str) -> IAMClient:
        """Return an IAM client acting in `account` (through `role_name` when not home)."""
        home = account == self.home_account()
        key = (account, "" if home else role_name)
        now = datetime.now(UTC)
        with self._lock:
            cached = self._iam.get(key)
            if cached is not None and (
                cached.expires_at is None or cached.expires_at - REFRESH_MARGIN > now
            ):
                return cached.client
            if home:
                client = self._base_session().client(
                    "iam", endpoint_url=self._endpoint_url, config=self._config
                )
                self._iam[key] = _CachedClient(client, None)
                return client
        client, expires_at = self._assume(account, role_name)
        with self._lock:
            self._iam[key] = _CachedClient(client, expires_at)
        return client

    def _assume(self, account: str, role_name: str) -> tuple[IAMClient, datetime]:
        role_arn = f"arn:aws:iam::{account}:role/{role_name}"
        try:
            credentials = self.sts().assume_role(
                RoleArn=role_arn, RoleSessionName=SESSION_NAME, DurationSeconds=3600
            )["Credentials"]
        except Exception as error:
            raise translate(error, operation="AssumeRole", target=role_arn) from error
        with self._lock:
            client = self._base_session().client(
                "iam",
                endpoint_url=self._endpoint_url,
                config=self._config,
                aws_access_key_id=credentials["AccessKeyId"],
                aws_secret_access_key=credentials["SecretAccessKey"],
                aws_session_token=credentials["SessionToken"],
            )
        return client, credentials["Expiration"]
