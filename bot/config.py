"""Settings from the environment (LEASH_*) and the policy file loader."""

from __future__ import annotations

import json
import re
import tomllib
import uuid
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from bot.domain.rules import Rules
from bot.store.audit import KEY_MIN_LENGTH

BUNDLED_POLICY = Path(__file__).parent / "leash.example.toml"
_PROJECT_ID = re.compile(r"[a-z][a-z0-9-]{4,28}[a-z0-9]")


class CloudMode(StrEnum):
    SANDBOX = "sandbox"
    AWS = "aws"


class ConfigError(Exception):
    """A setting or the policy file is wrong; the message names it in one line."""


class Settings(BaseSettings):
    """Everything an operator sets; each field is the env var LEASH_<NAME>."""

    model_config = SettingsConfigDict(env_prefix="LEASH_", extra="ignore", populate_by_name=True)

    database_url: str = "sqlite+aiosqlite:///./leash.db"
    policy_file: Path | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    cloud: CloudMode = CloudMode.SANDBOX
    aws_region: str = "us-east-1"
    aws_accounts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    aws_read_role: str = "LeashReadOnly"
    aws_grant_role: str = "LeashGrantManager"
    aws_use_organizations: bool = True
    # CloudTrail LookupEvents calls per second per account (AWS allows 2); an emulator takes more.
    aws_lookup_rate: float = Field(default=2.0, gt=0, le=1000)
    # Google Cloud: projects to scan, or an organization / folders whose projects are scanned.
    gcp_projects: Annotated[list[str], NoDecode] = Field(default_factory=list)
    gcp_organization: str | None = None
    gcp_folders: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Azure: on when `azure` is true or subscriptions are listed (empty list: all visible ones).
    azure: bool = False
    azure_subscriptions: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Without an Entra ID P2 licence there is no PIM: grants are plain role assignments.
    azure_pim: bool = True
    sweep_seconds: float = Field(default=30.0, gt=0, le=3600)
    # Replicas (PostgreSQL): the leader renews its lease every `leader_check_seconds`; a
    # follower tries every `leader_retry_seconds` and takes over once the lease has not been
    # renewed for `leader_lease_seconds`. A dead, frozen or cut-off leader is replaced within
    # lease + retry, and stops acting by itself once it could not renew for a whole lease.
    leader_lease_seconds: float = Field(default=15.0, ge=2, le=600)
    leader_retry_seconds: float = Field(default=5.0, gt=0, le=60)
    leader_check_seconds: float = Field(default=5.0, gt=0, le=60)
    # Bounds on every PostgreSQL session: lock waits, statements, and time idle inside a
    # transaction (a frozen replica's session is cut off and its locks released).
    database_lock_timeout_seconds: float = Field(default=10.0, gt=0, le=600)
    database_statement_timeout_seconds: float = Field(default=30.0, gt=0, le=3600)
    database_idle_in_transaction_seconds: float = Field(default=10.0, gt=0, le=3600)
    log_level: str = "INFO"
    # json: one object per line (timestamp, level, logger, message, request and grant ids).
    log_format: Literal["text", "json"] = "text"
    # Third-party libraries (cloud SDKs, HTTP clients, the job scheduler) log at this level and
    # above (and never below log_level): at INFO the SDKs log every request and its headers.
    log_libraries_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "WARNING"
    max_body_bytes: int = Field(default=256 * 1024, ge=1024)
    # Slack is enabled when both of the SDK's own variables are set.
    slack_bot_token: SecretStr | None = Field(default=None, validation_alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(
        default=None, validation_alias="SLACK_SIGNING_SECRET"
    )
    slack_api_url: str | None = Field(default=None, validation_alias="LEASH_SLACK_API_URL")
    # Slack asks apps for at most one message per second per channel.
    slack_pace_seconds: float = Field(default=1.0, ge=0, le=60)

    # Microsoft Teams: enabled by MICROSOFT_APP_ID (authentication on), or by LEASH_TEAMS=true
    # without one (authentication off: the sandbox and the Bot Framework Emulator only).
    teams: bool = False
    microsoft_app_id: str | None = Field(default=None, validation_alias="MICROSOFT_APP_ID")
    microsoft_app_password: SecretStr | None = Field(
        default=None, validation_alias="MICROSOFT_APP_PASSWORD"
    )
    microsoft_app_tenant_id: str | None = Field(
        default=None, validation_alias="MICROSOFT_APP_TENANT_ID"
    )
    microsoft_app_type: Literal["MultiTenant", "SingleTenant"] = Field(
        default="MultiTenant", validation_alias="MICROSOFT_APP_TYPE"
    )
    # The tenants a MultiTenant bot serves (none listed: every tenant); SingleTenant: its own.
    teams_tenants: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Overrides of the Bot Framework's token validation (sovereign clouds, tests).
    teams_openid_metadata_url: str | None = None
    teams_token_issuer: str | None = None
    # First wait before retrying a throttled or failed Bot Connector call; it doubles.
    teams_retry_seconds: float = Field(default=1.0, gt=0, le=60)
    # Keys the audit chain (HMAC-SHA256); kept outside the database. Required with a real cloud.
    audit_key: SecretStr | None = None

    @model_validator(mode="after")
    def _lease_outlives_renewals(self) -> Self:
        if self.leader_check_seconds * 2 > self.leader_lease_seconds:
            raise ValueError(
                "LEASH_LEADER_LEASE_SECONDS must be at least twice LEASH_LEADER_CHECK_SECONDS, "
                "so one late renewal does not cost the leadership"
            )
        return self

    @property
    def slack_enabled(self) -> bool:
        return bool(self.slack_bot_token and self.slack_signing_secret)

    @property
    def teams_enabled(self) -> bool:
        return self.teams or bool(self.microsoft_app_id)

    @field_validator("microsoft_app_id", "microsoft_app_tenant_id")
    @classmethod
    def _guid(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        try:
            return str(uuid.UUID(value.strip()))
        except ValueError:
            raise ValueError("not an Entra id (a GUID such as 00000000-0000-…)") from None

    @model_validator(mode="after")
    def _single_tenant_needs_tenant(self) -> Self:
        if self.microsoft_app_type == "SingleTenant" and not self.microsoft_app_tenant_id:
            raise ValueError("MICROSOFT_APP_TENANT_ID is required for a SingleTenant bot")
        return self

    @field_validator("audit_key")
    @classmethod
    def _audit_key_length(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < KEY_MIN_LENGTH:
            raise ValueError(
                f"too short: use at least {KEY_MIN_LENGTH} random characters "
                "(e.g. `openssl rand -hex 32`)"
            )
        return value

    @field_validator("log_libraries_level", mode="before")
    @classmethod
    def _level_name(cls, value: object) -> object:
        """`info` or `INFO` alike."""
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("teams_tenants", mode="before")
    @classmethod
    def _tenant_ids(cls, value: object) -> object:
        """Accept `id1,id2` or a JSON list; each becomes its lowercase GUID."""
        listed = cls._comma_list(value)
        if not isinstance(listed, list):
            return listed
        try:
            return list(dict.fromkeys(str(uuid.UUID(str(v).strip())) for v in listed))
        except ValueError:
            raise ValueError("not Entra tenant ids (GUIDs), comma-separated") from None

    @model_validator(mode="after")
    def _single_tenant_serves_its_own(self) -> Self:
        others = set(self.teams_tenants) - {self.microsoft_app_tenant_id}
        if self.microsoft_app_type == "SingleTenant" and others:
            raise ValueError(
                "LEASH_TEAMS_TENANTS: a SingleTenant bot serves only MICROSOFT_APP_TENANT_ID; "
                "list other tenants only with MICROSOFT_APP_TYPE=MultiTenant"
            )
        return self

    @property
    def gcp_enabled(self) -> bool:
        return bool(self.gcp_projects or self.gcp_organization or self.gcp_folders)

    @property
    def azure_enabled(self) -> bool:
        return self.azure or bool(self.azure_subscriptions)

    @field_validator("azure_subscriptions")
    @classmethod
    def _subscription_ids(cls, value: list[str]) -> list[str]:
        try:
            return [str(uuid.UUID(v)) for v in value]
        except ValueError:
            raise ValueError("not Azure subscription ids (GUIDs), comma-separated") from None

    @field_validator("gcp_projects")
    @classmethod
    def _project_ids(cls, value: list[str]) -> list[str]:
        bad = [v for v in value if not _PROJECT_ID.fullmatch(v)]
        if bad:
            raise ValueError(f"not GCP project ids (6-30 lowercase letters, digits, -): {bad}")
        return value

    @field_validator("gcp_organization")
    @classmethod
    def _organization(cls, value: str | None) -> str | None:
        if not value:
            return None
        number = value.removeprefix("organizations/")
        if not number.isdigit():
            raise ValueError("write organizations/123456789012 (or just the number)")
        return f"organizations/{number}"

    @field_validator("gcp_folders")
    @classmethod
    def _folders(cls, value: list[str]) -> list[str]:
        numbers = [v.removeprefix("folders/") for v in value]
        if not all(n.isdigit() for n in numbers):
            raise ValueError("write folders/123456789012 (or just the numbers), comma-separated")
        return [f"folders/{n}" for n in numbers]

    @field_validator(
        "aws_accounts", "gcp_projects", "gcp_folders", "azure_subscriptions", mode="before"
    )
    @classmethod
    def _comma_list(cls, value: object) -> object:
        """Accept `111111111111,222222222222` as well as a JSON list."""
        if isinstance(value, str) and value.strip().startswith("["):
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                raise ValueError("not a JSON list; write 111111111111,222222222222") from None
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("aws_accounts")
    @classmethod
    def _account_ids(cls, value: list[str]) -> list[str]:
        bad = [v for v in value if not (v.isascii() and v.isdigit() and len(v) == 12)]
        if bad:
            raise ValueError(f"not 12-digit AWS account ids: {', '.join(bad)}")
        return value


def load_settings() -> Settings:
    """Read settings from the environment; a bad value becomes one line naming the variable."""
    try:
        return Settings()
    except SettingsError as error:
        raise ConfigError(f"LEASH_*: {error}") from None
    except ValidationError as error:
        first = error.errors()[0]
        message = str(first["msg"]).removeprefix("Value error, ")
        if not first["loc"]:
            raise ConfigError(message) from None
        raise ConfigError(f"{_variable(first['loc'])}: {message}") from None


def _variable(loc: tuple[int | str, ...]) -> str:
    """The environment variable a validation error is about."""
    name = str(loc[0])
    if name.isupper():
        return name  # already the variable's own name (e.g. MICROSOFT_APP_ID)
    field = Settings.model_fields.get(name)
    alias = field.validation_alias if field is not None else None
    return alias if isinstance(alias, str) else "LEASH_" + name.upper()


def check_teams(settings: Settings, *, real_cloud: bool) -> None:
    """Refuse Teams without authentication when Leash holds keys to a real cloud."""
    if settings.teams_enabled and not settings.microsoft_app_id and real_cloud:
        raise ConfigError(
            "MICROSOFT_APP_ID: Teams is enabled against a real cloud without an app id, so "
            "anyone could post to /api/messages; set MICROSOFT_APP_ID and "
            "MICROSOFT_APP_PASSWORD (LEASH_TEAMS=true alone is for the sandbox)"
        )
    if settings.microsoft_app_id and not settings.microsoft_app_password:
        raise ConfigError("MICROSOFT_APP_PASSWORD: required with MICROSOFT_APP_ID")


def policy_path(settings: Settings) -> Path:
    """The policy file in use: LEASH_POLICY_FILE, else ./leash.toml, else the bundled example."""
    if settings.policy_file is not None:
        return settings.policy_file
    local = Path("leash.toml")
    return local if local.exists() else BUNDLED_POLICY


def load_rules(path: Path) -> Rules:
    """Parse and validate a policy file; errors name the file and the key."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"LEASH_POLICY_FILE: {path} does not exist") from None
    except OSError as error:
        raise ConfigError(f"LEASH_POLICY_FILE: {path}: {error.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: not valid TOML ({error})") from None
    try:
        return Rules.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise ConfigError(f"{path}: {where}: {first['msg']}") from None
