"""Build boto3 clients lazily: one per account, role and service, refreshed before expiry."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal, cast

from cloud.aws.errors import translate
from cloud.user_agent import leash_user_agent

if TYPE_CHECKING:  # boto3 itself is imported when the first client is built
    import boto3
    from botocore.client import BaseClient
    from botocore.config import Config
    from mypy_boto3_cloudtrail import CloudTrailClient
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_organizations import OrganizationsClient
    from mypy_boto3_sts import STSClient

SESSION_NAME = "leash"
# Assumed-role credentials are replaced this long before they expire.
REFRESH_MARGIN = timedelta(minutes=5)
AccountService = Literal["iam", "cloudtrail"]
# botocore waits 60 s to connect and 60 s for each answer by default: a hung endpoint would hold
# a grant (and the sweep behind it) for minutes. These bound every try; botocore retries them.
CONNECT_TIMEOUT_SECONDS = 5.0
READ_TIMEOUT_SECONDS = 20.0


@dataclass(frozen=True, slots=True)
class _Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str
    expires_at: datetime


@dataclass(slots=True)
class _CachedClient:
    client: BaseClient
    expires_at: datetime | None


def _fresh(expires_at: datetime | None, now: datetime) -> bool:
    return expires_at is None or expires_at - REFRESH_MARGIN > now


class AccountClients:
    """Hand out clients for any account, assuming a role in accounts other than home."""

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
        self._max_attempts = max_attempts
        # boto3 sessions are not thread-safe: create clients under this lock only.
        self._lock = threading.Lock()
        self._session: boto3.Session | None = None
        self._sts: STSClient | None = None
        self._organizations: OrganizationsClient | None = None
        self._caller: tuple[str, str] | None = None  # (account, ARN)
        self._credentials: dict[tuple[str, str], _Credentials] = {}
        self._clients: dict[tuple[str, str, str, str], _CachedClient] = {}

    def _config_for(self, region: str) -> Config:
        from botocore.config import Config

        # botocore merges this over the session's default client config, if it has one.
        own = Config(
            region_name=region,
            # botocore's `max_attempts` counts retries; `total_max_attempts` counts every try.
            retries={"mode": "standard", "total_max_attempts": self._max_attempts},
            # CloudTrail's userAgent then names Leash (and the sandbox tells its calls apart).
            user_agent_extra=leash_user_agent(),
        )
        return self._timeouts().merge(own)

    def _timeouts(self) -> Config:
        """Leash's timeouts, unless the session's default client config sets its own."""
        from botocore.config import Config

        defaults = Config(
            connect_timeout=CONNECT_TIMEOUT_SECONDS, read_timeout=READ_TIMEOUT_SECONDS
        )
        # boto3 has no public accessor for its botocore session's default client config.
        configured = self._base_session()._session.get_default_client_config()
        return defaults if configured is None else defaults.merge(configured)

    def _base_session(self) -> boto3.Session:
        if self._session is None:
            self._session = self._session_factory()
        return self._session

    def sts(self) -> STSClient:
        """Return the STS client of the base session."""
        with self._lock:
            if self._sts is None:
                self._sts = self._base_session().client(
                    "sts", endpoint_url=self._endpoint_url, config=self._config_for(self._region)
                )
            return self._sts

    def organizations(self) -> OrganizationsClient:
        """Return the Organizations client of the base session."""
        with self._lock:
            if self._organizations is None:
                self._organizations = self._base_session().client(
                    "organizations",
                    endpoint_url=self._endpoint_url,
                    config=self._config_for(self._region),
                )
            return self._organizations

    def _caller_identity(self) -> tuple[str, str]:
        if self._caller is None:
            try:
                identity = self.sts().get_caller_identity()
            except Exception as error:
                raise translate(
                    error, operation="GetCallerIdentity", target="Leash's own credentials"
                ) from error
            self._caller = (identity["Account"], identity["Arn"])
        return self._caller

    def home_account(self) -> str:
        """Return the account the base session's credentials belong to."""
        return self._caller_identity()[0]

    def caller_arn(self) -> str:
        """Return the ARN of the base session's principal (Leash itself in its home account)."""
        return self._caller_identity()[1]

    def iam(self, account: str, *, role_name: str) -> IAMClient:
        """Return an IAM client acting in `account` (through `role_name` when not home)."""
        return cast("IAMClient", self._client("iam", account, role_name, self._region))

    def cloudtrail(self, account: str, *, role_name: str, region: str) -> CloudTrailClient:
        """Return a CloudTrail client for `region` acting in `account` (as `iam` does)."""
        return cast("CloudTrailClient", self._client("cloudtrail", account, role_name, region))

    def _client(
        self, service: AccountService, account: str, role_name: str, region: str
    ) -> BaseClient:
        home = account == self.home_account()
        key = (service, region, account, "" if home else role_name)
        with self._lock:
            cached = self._clients.get(key)
            if cached is not None and _fresh(cached.expires_at, datetime.now(UTC)):
                return cached.client
        credentials = None if home else self._assumed(account, role_name)
        with self._lock:
            client: BaseClient = self._base_session().client(
                service,
                endpoint_url=self._endpoint_url,
                config=self._config_for(region),
                aws_access_key_id=credentials.access_key_id if credentials else None,
                aws_secret_access_key=credentials.secret_access_key if credentials else None,
                aws_session_token=credentials.session_token if credentials else None,
            )
            expires_at = credentials.expires_at if credentials else None
            self._clients[key] = _CachedClient(client, expires_at)
        return client

    def _assumed(self, account: str, role_name: str) -> _Credentials:
        """Return credentials for `role_name` in `account`, assuming it when none are fresh."""
        with self._lock:
            cached = self._credentials.get((account, role_name))
            if cached is not None and _fresh(cached.expires_at, datetime.now(UTC)):
                return cached
        role_arn = f"arn:aws:iam::{account}:role/{role_name}"
        try:
            issued = self.sts().assume_role(
                RoleArn=role_arn, RoleSessionName=SESSION_NAME, DurationSeconds=3600
            )["Credentials"]
        except Exception as error:
            raise translate(error, operation="AssumeRole", target=role_arn) from error
        credentials = _Credentials(
            issued["AccessKeyId"],
            issued["SecretAccessKey"],
            issued["SessionToken"],
            issued["Expiration"],
        )
        with self._lock:
            self._credentials[(account, role_name)] = credentials
        return credentials
