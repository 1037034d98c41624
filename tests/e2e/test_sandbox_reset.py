"""`leash sandbox --reset`: the demo starts over by deleting its local SQLite database, after
asking (or with --yes); never a PostgreSQL database, never one a running Leash holds."""

from __future__ import annotations

import fcntl
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli.sandbox import sandbox

DEMO_FILES = (
    "leash.db",
    "leash.db-wal",
    "leash.db-shm",
    "leash.db.scheduler.lock",
    "leash.audit-key",
)


@pytest.fixture
def demo_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory holding what a `make run` leaves, as the working directory, defaults set."""
    for name in DEMO_FILES:
        (tmp_path / name).write_text("x")
    (tmp_path / "leash.toml").write_text("kept")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LEASH_DATABASE_URL", raising=False)
    return tmp_path


def _left(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


def test_reset_asks_then_deletes_the_database_and_its_companions(demo_directory: Path) -> None:
    result = CliRunner().invoke(sandbox, ["--reset"], input="y\n")

    assert result.exit_code == 0, result.output
    assert "Delete leash.db, " in result.output
    assert "Deleted leash.db" in result.output
    assert _left(demo_directory) == ["leash.toml"]


def test_reset_without_a_yes_deletes_nothing(demo_directory: Path) -> None:
    result = CliRunner().invoke(sandbox, ["--reset"], input="n\n")

    assert result.exit_code == 1, result.output
    assert _left(demo_directory) == sorted([*DEMO_FILES, "leash.toml"])


def test_reset_with_yes_does_not_ask(demo_directory: Path) -> None:
    result = CliRunner().invoke(sandbox, ["--reset", "--yes"], input="")

    assert result.exit_code == 0, result.output
    assert "?" not in result.output
    assert _left(demo_directory) == ["leash.toml"]


def test_reset_never_deletes_a_postgresql_database(
    demo_directory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEASH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/x")

    result = CliRunner().invoke(sandbox, ["--reset", "--yes"])

    assert result.exit_code == 1
    assert "not a SQLite file" in result.output
    assert _left(demo_directory) == sorted([*DEMO_FILES, "leash.toml"])


def test_reset_refuses_while_a_leash_holds_the_database(demo_directory: Path) -> None:
    lock = demo_directory / "leash.db.scheduler.lock"
    with lock.open("r+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.seek(0)
        held.truncate()
        held.write("4242\n")
        held.flush()

        result = CliRunner().invoke(sandbox, ["--reset", "--yes"])

    assert result.exit_code == 1
    assert "pid 4242" in result.output
    assert "stop it first" in result.output
    assert _left(demo_directory) == sorted([*DEMO_FILES, "leash.toml"])


def test_a_custom_sqlite_file_is_the_one_reset(
    demo_directory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = demo_directory / "other.db"
    other.write_text("x")
    monkeypatch.setenv("LEASH_DATABASE_URL", f"sqlite+aiosqlite:///{other}")

    result = CliRunner().invoke(sandbox, ["--reset", "--yes"])

    assert result.exit_code == 0, result.output
    assert not other.exists()
    assert (demo_directory / "leash.db").exists()


def test_nothing_to_reset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LEASH_DATABASE_URL", raising=False)

    result = CliRunner().invoke(sandbox, ["--reset"])

    assert result.exit_code == 0
    assert "Nothing to reset" in result.output


def test_yes_alone_is_a_usage_error() -> None:
    result = CliRunner().invoke(sandbox, ["--yes"])

    assert result.exit_code == 2
    assert "--yes goes with --reset" in result.output
