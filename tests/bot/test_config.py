"""Tests for settings from the environment and the policy file loader."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from bot.config import (
    BUNDLED_POLICY,
    CloudMode,
    ConfigError,
    Settings,
    load_rules,
    load_settings,
    policy_path,
)
from bot.domain.rules import ApproverRole
from bot.domain.states import Tier


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.upper().startswith("LEASH_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def _config_error(call: Callable[[], object]) -> str:
    with pytest.raises(ConfigError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message
    return message


# --- settings ---------------------------------------------------------------------------


def test_defaults_without_environment() -> None:
    settings = load_settings()
    assert settings.database_url == "sqlite+aiosqlite:///./leash.db"
    assert settings.policy_file is None
    assert settings.host == "127.0.0.1"
    assert settings.port == 8080
    assert settings.cloud is CloudMode.SANDBOX
    assert settings.aws_region == "us-east-1"
    assert settings.aws_accounts == []
    assert settings.aws_read_role == "LeashReadOnly"
    assert settings.aws_use_organizations is True
    assert settings.aws_lookup_rate == 2.0  # CloudTrail's own limit
    assert settings.sweep_seconds == 30.0
    assert settings.log_level == "INFO"
    assert settings.max_body_bytes == 256 * 1024


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LEASH_DATABASE_URL", "postgresql+asyncpg://db/leash")
    monkeypatch.setenv("LEASH_POLICY_FILE", str(tmp_path / "p.toml"))
    monkeypatch.setenv("LEASH_HOST", "10.0.0.5")
    monkeypatch.setenv("LEASH_PORT", "9000")
    monkeypatch.setenv("LEASH_CLOUD", "aws")
    monkeypatch.setenv("LEASH_AWS_REGION", "eu-west-1")
    monkeypatch.setenv("LEASH_AWS_ACCOUNTS", '["111111111111", "222222222222"]')
    monkeypatch.setenv("LEASH_AWS_USE_ORGANIZATIONS", "false")
    monkeypatch.setenv("LEASH_AWS_LOOKUP_RATE", "50")
    monkeypatch.setenv("LEASH_SWEEP_SECONDS", "2.5")
    monkeypatch.setenv("leash_log_level", "DEBUG")
    settings = load_settings()
    assert settings.database_url == "postgresql+asyncpg://db/leash"
    assert settings.policy_file == tmp_path / "p.toml"
    assert settings.host == "10.0.0.5"
    assert settings.port == 9000
    assert settings.cloud is CloudMode.AWS
    assert settings.aws_region == "eu-west-1"
    assert settings.aws_accounts == ["111111111111", "222222222222"]
    assert settings.aws_use_organizations is False
    assert settings.aws_lookup_rate == 50
    assert settings.sweep_seconds == 2.5
    assert settings.log_level == "DEBUG"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        pytest.param("LEASH_PORT", "eighty", id="port-not-a-number"),
        pytest.param("LEASH_PORT", "70000", id="port-too-high"),
        pytest.param("LEASH_PORT", "-1", id="port-negative"),
        pytest.param("LEASH_CLOUD", "gcp", id="unknown-cloud"),
        pytest.param("LEASH_SWEEP_SECONDS", "0", id="sweep-zero"),
        pytest.param("LEASH_SWEEP_SECONDS", "3601", id="sweep-over-an-hour"),
        pytest.param("LEASH_AWS_USE_ORGANIZATIONS", "maybe", id="bool-not-a-bool"),
        pytest.param("LEASH_MAX_BODY_BYTES", "10", id="body-limit-too-small"),
        pytest.param("LEASH_AWS_LOOKUP_RATE", "0", id="lookup-rate-zero"),
        pytest.param("LEASH_AWS_ACCOUNTS", '["111111111111"', id="accounts-broken-json"),
    ],
)
def test_bad_setting_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    assert _config_error(load_settings).startswith(f"{variable}: ")


def test_bad_setting_error_hides_the_pydantic_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEASH_PORT", "eighty")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__ is True


def test_unrelated_environment_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEASH_NOT_A_SETTING", "whatever")
    monkeypatch.setenv("PORT", "not-a-port")
    assert load_settings().port == 8080


# --- policy_path ------------------------------------------------------------------------


def test_policy_path_prefers_the_setting(tmp_path: Path) -> None:
    (tmp_path / "leash.toml").write_text("", encoding="utf-8")
    chosen = tmp_path / "elsewhere.toml"
    assert policy_path(Settings(policy_file=chosen)) == chosen


def test_policy_path_uses_local_file(tmp_path: Path) -> None:
    (tmp_path / "leash.toml").write_text("", encoding="utf-8")
    assert policy_path(Settings()) == Path("leash.toml")


def test_policy_path_falls_back_to_bundled_example() -> None:
    assert policy_path(Settings()) == BUNDLED_POLICY


def test_policy_path_reads_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LEASH_POLICY_FILE", str(tmp_path / "from-env.toml"))
    assert policy_path(load_settings()) == tmp_path / "from-env.toml"


# --- load_rules -------------------------------------------------------------------------


def test_bundled_example_loads() -> None:
    rules = load_rules(BUNDLED_POLICY)
    assert rules.admins == frozenset({"secops"})
    assert rules.bots == frozenset({"leash-bot"})
    assert rules.approvals_channel is None
    assert rules.requests.escalate_after == timedelta(minutes=20)
    assert rules.grants.irrevocable_retry == timedelta(days=1)
    assert rules.tier_rule(Tier.NORMAL).max_duration == timedelta(hours=8)
    assert rules.tier_rule(Tier.ESCALATION).approvers == (ApproverRole.ADMINS,)
    assert rules.tier_rule(Tier.BREAK_GLASS).approvals == 2
    assert set(rules.permission_sets) == {
        "s3-read",
        "s3-write",
        "bedrock-invoke",
        "bedrock-flow-admin",
        "dynamodb-read",
        "pass-role",
        "break-glass-admin",
        "bigquery-read",
        "gcp-token-creator",
    }
    assert rules.permission_sets["s3-read"].gcp_roles == ("roles/storage.objectViewer",)
    assert rules.permission_sets["bigquery-read"].actions == ()  # a GCP-only set
    assert rules.permission_sets["break-glass-admin"].tier is Tier.BREAK_GLASS
    assert rules.permission_sets["pass-role"].actions == ("iam:PassRole",)


def test_minimal_policy_file_gets_defaults(tmp_path: Path) -> None:
    path = tmp_path / "leash.toml"
    path.write_text('admins = ["alice"]\n', encoding="utf-8")
    rules = load_rules(path)
    assert rules.admins == frozenset({"alice"})
    assert rules.tier_rule(Tier.PRIVILEGED).max_duration == timedelta(hours=2)


def test_missing_file_names_the_setting(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    assert _config_error(lambda: load_rules(path)) == f"LEASH_POLICY_FILE: {path} does not exist"


def test_directory_instead_of_file_is_a_config_error(tmp_path: Path) -> None:
    assert str(tmp_path) in _config_error(lambda: load_rules(tmp_path))


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"admins = [secops]\n", id="unquoted-string"),
        pytest.param(b"[grants\nmin_duration = '5m'\n", id="unclosed-table"),
        pytest.param(b"admins = 1\nadmins = 2\n", id="duplicate-key"),
        pytest.param(b"admins = ['\xff\xfe']\n", id="not-utf8"),
    ],
)
def test_bad_toml_names_the_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "leash.toml"
    path.write_bytes(content)
    assert _config_error(lambda: load_rules(path)).startswith(f"{path}: not valid TOML (")


@pytest.mark.parametrize(
    ("content", "where"),
    [
        pytest.param('admin = ["secops"]\n', "admin", id="unknown-top-level-key"),
        pytest.param("[grants]\nmin_durations = '5m'\n", "grants.min_durations", id="unknown-key"),
        pytest.param("[grants]\nrevoke_attempts = 0\n", "grants.revoke_attempts", id="bad-int"),
        pytest.param("[tiers.normal]\nmax_duration = '8h'\n", "(top level)", id="missing-tiers"),
        pytest.param(
            "[permission_sets.x]\nactions = ['s3 Get']\n", "permission_sets.x", id="bad-action"
        ),
        pytest.param("[grants]\nmin_duration = 'soon'\n", "grants.min_duration", id="bad-duration"),
        pytest.param(
            "[requests]\nremind_after = '0m'\n", "requests.remind_after", id="zero-duration"
        ),
    ],
)
def test_bad_key_names_file_and_key(tmp_path: Path, content: str, where: str) -> None:
    path = tmp_path / "leash.toml"
    path.write_text(content, encoding="utf-8")
    assert _config_error(lambda: load_rules(path)).startswith(f"{path}: {where}: ")
