"""Tests for the chat command grammar."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.commands.grammar.access import (
    MAX_COMMAND,
    USAGE,
    ApproveCommand,
    CancelCommand,
    Command,
    DenyCommand,
    ExtendCommand,
    HelpCommand,
    IdentitiesCommand,
    ListGrantsCommand,
    ListRequestsCommand,
    OwnerActionCommand,
    OwnerSetCommand,
    OwnerShowCommand,
    OwnsCommand,
    RequestCommand,
    RevokeCommand,
    TokenCommand,
    UsageError,
    WhoAmICommand,
    parse,
)
from bot.domain.errors import InvalidDurationError, InvalidInputError

HOUR = timedelta(hours=1)


def _usage_error(text: str) -> UsageError:
    with pytest.raises(UsageError) as caught:
        parse(text)
    return caught.value


# --- request ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "request agent-x s3-read for 1h because nightly export",
            RequestCommand("agent-x", ("s3-read",), (), HOUR, "nightly export"),
            id="permission-set",
        ),
        pytest.param(
            "request agent-x s3:GetObject s3:PutObject on arn:aws:s3:::b/* arn:aws:s3:::c "
            "for 30m because backfill",
            RequestCommand(
                "agent-x",
                ("s3:GetObject", "s3:PutObject"),
                ("arn:aws:s3:::b/*", "arn:aws:s3:::c"),
                timedelta(minutes=30),
                "backfill",
            ),
            id="actions-on-resources",
        ),
        pytest.param(
            "request agent-x s3:GetObject, s3:PutObject on arn:a, arn:b for 30m because x",
            RequestCommand(
                "agent-x",
                ("s3:GetObject", "s3:PutObject"),
                ("arn:a", "arn:b"),
                timedelta(minutes=30),
                "x",
            ),
            id="commas-and-spaces-between-items",
        ),
        pytest.param(
            "request agent-x s3:GetObject , s3:PutObject for 30m because x",
            RequestCommand(
                "agent-x", ("s3:GetObject", "s3:PutObject"), (), timedelta(minutes=30), "x"
            ),
            id="lone-comma-dropped",
        ),
        pytest.param(
            "request agent-x s3:GetObject,s3:PutObject for 30m because x",
            RequestCommand(
                "agent-x", ("s3:GetObject", "s3:PutObject"), (), timedelta(minutes=30), "x"
            ),
            id="commas-without-spaces",
        ),
        pytest.param(
            "  request   agent-x\ts3-read \n for\u00a0 1h   because  a   b  ",
            RequestCommand("agent-x", ("s3-read",), (), HOUR, "a b"),
            id="extra-whitespace-tabs-newlines-nbsp",
        ),
        pytest.param(
            "/leash request agent-x s3-read for 1h because x",
            RequestCommand("agent-x", ("s3-read",), (), HOUR, "x"),
            id="slash-leash-prefix",
        ),
        pytest.param(
            "REQUEST Agent-X S3-Read FOR 1H BECAUSE Prod Is Down",
            RequestCommand("Agent-X", ("S3-Read",), (), HOUR, "Prod Is Down"),
            id="upper-case-keywords-values-kept",
        ),
        pytest.param(
            "Request agent-x s3:GetObject ON arn:a For 2h Because x",
            RequestCommand("agent-x", ("s3:GetObject",), ("arn:a",), 2 * HOUR, "x"),
            id="mixed-case-on-for-because",
        ),
        pytest.param(
            "request agent-x s3-read for 1h because deploy because of the incident",
            RequestCommand("agent-x", ("s3-read",), (), HOUR, "deploy because of the incident"),
            id="because-inside-reason",
        ),
        pytest.param(
            "request agent-x s3-read for 1h because waiting for 2h on ops",
            RequestCommand("agent-x", ("s3-read",), (), HOUR, "waiting for 2h on ops"),
            id="for-and-on-inside-reason",
        ),
        pytest.param(
            "request agent-x s3-read for 1h because l'équipe n'a pas accès — 🚨 prod's down",
            RequestCommand(
                "agent-x", ("s3-read",), (), HOUR, "l'équipe n'a pas accès — 🚨 prod's down"
            ),
            id="apostrophes-and-unicode-reason",
        ),
        pytest.param(
            "request agent-x s3-read for 1h30m because x",
            RequestCommand("agent-x", ("s3-read",), (), timedelta(minutes=90), "x"),
            id="compound-duration",
        ),
        pytest.param(
            "request agent-x * for 1h because incident",
            RequestCommand("agent-x", ("*",), (), HOUR, "incident"),
            id="full-wildcard",
        ),
    ],
)
def test_request_parses(text: str, expected: RequestCommand) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("items", "permission_set"),
    [
        pytest.param(("s3-read",), "s3-read", id="one-name-is-a-set"),
        pytest.param(("s3:GetObject",), None, id="one-action-is-not-a-set"),
        pytest.param(("*",), None, id="wildcard-is-not-a-set"),
        pytest.param(("roles/container.admin",), None, id="one-gcp-role-is-not-a-set"),
        pytest.param(("projects/p/roles/deployer",), None, id="a-custom-role-is-not-a-set"),
        pytest.param(("s3-read", "s3-write"), None, id="two-names-are-not-a-set"),
    ],
)
def test_request_permission_set(items: tuple[str, ...], permission_set: str | None) -> None:
    command = RequestCommand("agent-x", items, (), HOUR, "x")
    assert command.permission_set == permission_set


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        pytest.param("request", "Say why", id="bare-verb"),
        pytest.param("request agent-x s3-read for 1h", "Say why", id="no-because"),
        pytest.param("request agent-x s3-read for 1h because", "Say why", id="empty-reason"),
        pytest.param("request agent-x s3-read for 1h because   ", "Say why", id="blank-reason"),
        pytest.param("request agent-x s3-read 1h because x", "Say for how long", id="no-for"),
        pytest.param(
            "request agent-x s3-read for because x", "Give one duration", id="for-no-duration"
        ),
        pytest.param(
            "request agent-x s3-read for 1h 2h because x", "Give one duration", id="two-durations"
        ),
        pytest.param(
            "request agent-x s3-read for 1 h because x",
            "Give one duration",
            id="duration-split-in-two-words",
        ),
        pytest.param("request agent-x for 1h because x", "Name an identity", id="nothing-asked"),
        pytest.param("request for 1h because x", "Name an identity", id="no-identity"),
        pytest.param(
            "request agent-x s3:GetObject on for 1h because x",
            "Name at least one resource",
            id="on-without-resources",
        ),
        pytest.param(
            "request agent-x on arn:a for 1h because x",
            "Name a permission set",
            id="on-without-actions",
        ),
    ],
)
def test_request_usage_errors(text: str, problem: str) -> None:
    error = _usage_error(text)
    assert problem in str(error)
    assert USAGE["request"] in str(error)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("request agent-x s3-read for 1h for 2h because x", id="two-for-clauses"),
        pytest.param("request agent-x , for 1h because x", id="only-commas-as-actions"),
        pytest.param(
            "request agent-x s3:GetObject on , for 1h because x", id="only-commas-as-resources"
        ),
    ],
)
def test_request_rejects_malformed_lists(text: str) -> None:
    error = _usage_error(text)
    assert USAGE["request"] in str(error)


def test_request_with_bad_duration_names_the_text() -> None:
    with pytest.raises(InvalidDurationError, match="'soon' is not a duration"):
        parse("request agent-x s3-read for soon because x")


# --- decisions on requests --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("approve r-1", ApproveCommand("r-1", None), id="approve"),
        pytest.param(
            "approve r-1 looks good, ship it",
            ApproveCommand("r-1", "looks good, ship it"),
            id="approve-with-note",
        ),
        pytest.param("APPROVE  r-1   ok  ", ApproveCommand("r-1", "ok"), id="approve-upper-spaces"),
        pytest.param(
            "deny r-1 because wrong account", DenyCommand("r-1", "wrong account"), id="deny"
        ),
        pytest.param(
            "Deny r-1 BECAUSE it's not needed because we've got a cache",
            DenyCommand("r-1", "it's not needed because we've got a cache"),
            id="deny-because-in-reason",
        ),
        pytest.param("cancel r-1", CancelCommand("r-1"), id="cancel"),
        pytest.param("revoke g-1", RevokeCommand("g-1"), id="revoke"),
        pytest.param(
            "extend g-1 30m because the migration is slow",
            ExtendCommand("g-1", timedelta(minutes=30), "the migration is slow"),
            id="extend",
        ),
        pytest.param("EXTEND g-1 1H BECAUSE x", ExtendCommand("g-1", HOUR, "x"), id="extend-upper"),
    ],
)
def test_decision_commands_parse(text: str, expected: Command) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "verb", "problem"),
    [
        pytest.param("approve", "approve", "Which request?", id="approve-no-id"),
        pytest.param("deny", "deny", "Which request?", id="deny-nothing"),
        pytest.param("deny because x", "deny", "Which request?", id="deny-no-id"),
        pytest.param("deny r-1 r-2 because x", "deny", "Which request?", id="deny-two-ids"),
        pytest.param("deny r-1", "deny", "Say why you deny r-1", id="deny-no-reason"),
        pytest.param("deny r-1 because", "deny", "Say why you deny r-1", id="deny-empty-reason"),
        pytest.param("cancel", "cancel", "exactly one id", id="cancel-no-id"),
        pytest.param("cancel r-1 r-2", "cancel", "exactly one id", id="cancel-two-ids"),
        pytest.param("revoke", "revoke", "exactly one id", id="revoke-no-id"),
        pytest.param("revoke g-1 g-2", "revoke", "exactly one id", id="revoke-two-ids"),
        pytest.param("extend g-1 because x", "extend", "how much longer", id="extend-no-duration"),
        pytest.param(
            "extend g-1 30m 1h because x", "extend", "how much longer", id="extend-two-durations"
        ),
        pytest.param("extend g-1 30m", "extend", "Say why", id="extend-no-reason"),
        pytest.param("extend g-1 30m because", "extend", "Say why", id="extend-empty-reason"),
    ],
)
def test_decision_command_usage_errors(text: str, verb: str, problem: str) -> None:
    error = _usage_error(text)
    assert problem in str(error)
    assert USAGE[verb] in str(error)


def test_extend_with_bad_duration_names_the_text() -> None:
    with pytest.raises(InvalidDurationError, match="'later' is not a duration"):
        parse("extend g-1 later because x")


# --- listings ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("requests", ListRequestsCommand("mine"), id="requests-default-mine"),
        pytest.param("requests mine", ListRequestsCommand("mine"), id="requests-mine"),
        pytest.param("requests pending", ListRequestsCommand("pending"), id="requests-pending"),
        pytest.param("requests PENDING", ListRequestsCommand("pending"), id="requests-scope-case"),
        pytest.param("grants", ListGrantsCommand("mine"), id="grants-default-mine"),
        pytest.param("grants all", ListGrantsCommand("all"), id="grants-all"),
        pytest.param("grants ALL", ListGrantsCommand("all"), id="grants-scope-case"),
        pytest.param("grants Agent-X", ListGrantsCommand("Agent-X"), id="grants-identity-kept"),
        pytest.param("owns", OwnsCommand(None), id="owns-self"),
        pytest.param("owns alice", OwnsCommand("alice"), id="owns-user"),
        pytest.param("identities", IdentitiesCommand(None), id="identities-all"),
        pytest.param("identities prod", IdentitiesCommand("prod"), id="identities-filter"),
        pytest.param(
            "identities  prod   agents ",
            IdentitiesCommand("prod agents"),
            id="identities-multiword-filter",
        ),
        pytest.param("whoami", WhoAmICommand(), id="whoami"),
        pytest.param("WhoAmI", WhoAmICommand(), id="whoami-case"),
    ],
)
def test_listing_commands_parse(text: str, expected: Command) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "verb"),
    [
        pytest.param("requests mine pending", "requests", id="requests-two-scopes"),
        pytest.param("requests bogus", "requests", id="requests-unknown-scope"),
        pytest.param("grants all mine", "grants", id="grants-two-scopes"),
        pytest.param("owns alice bob", "owns", id="owns-two-users"),
    ],
)
def test_listing_usage_errors(text: str, verb: str) -> None:
    assert USAGE[verb] in str(_usage_error(text))


# --- ownership and tokens ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "owner set agent-x alice", OwnerSetCommand("agent-x", "alice", None, None), id="set"
        ),
        pytest.param(
            "owner set agent-x alice backup bob",
            OwnerSetCommand("agent-x", "alice", "bob", None),
            id="set-backup",
        ),
        pytest.param(
            "owner set agent-x alice team data",
            OwnerSetCommand("agent-x", "alice", None, "data"),
            id="set-team",
        ),
        pytest.param(
            "owner set agent-x alice team data backup bob",
            OwnerSetCommand("agent-x", "alice", "bob", "data"),
            id="set-options-any-order",
        ),
        pytest.param(
            "OWNER SET Agent-X Alice BACKUP Bob TEAM Data",
            OwnerSetCommand("Agent-X", "Alice", "Bob", "Data"),
            id="set-keywords-case-values-kept",
        ),
        pytest.param("owner show agent-x", OwnerShowCommand("agent-x"), id="show"),
        pytest.param("owner SHOW agent-x", OwnerShowCommand("agent-x"), id="show-case"),
        pytest.param("token issue agent-x", TokenCommand("issue", "agent-x"), id="token-issue"),
        pytest.param(
            "token REVOKE agent-x", TokenCommand("revoke", "agent-x"), id="token-revoke-case"
        ),
    ],
)
def test_owner_and_token_parse(text: str, expected: Command) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "verb", "problem"),
    [
        pytest.param(
            "owner", "owner", "Say `set`, `show`, `claim`, `confirm` or `assign`", id="owner-bare"
        ),
        pytest.param(
            "owner show",
            "owner",
            "Say `set`, `show`, `claim`, `confirm` or `assign`",
            id="show-no-identity",
        ),
        pytest.param(
            "owner show a b",
            "owner",
            "Say `set`, `show`, `claim`, `confirm` or `assign`",
            id="show-two-identities",
        ),
        pytest.param(
            "owner set agent-x",
            "owner",
            "Say `set`, `show`, `claim`, `confirm` or `assign`",
            id="set-no-user",
        ),
        pytest.param(
            "owner delete agent-x alice",
            "owner",
            "Say `set`, `show`, `claim`, `confirm` or `assign`",
            id="bad-sub",
        ),
        pytest.param(
            "owner set agent-x alice backup", "owner", "come in pairs", id="option-without-value"
        ),
        pytest.param(
            "owner set agent-x alice backup bob backup carol",
            "owner",
            "repeated option 'backup'",
            id="repeated-option",
        ),
        pytest.param(
            "owner set agent-x alice manager bob",
            "owner",
            "Unknown or repeated option 'manager'",
            id="unknown-option",
        ),
        pytest.param("token", "token", "Say `issue`, `rotate`", id="token-bare"),
        pytest.param("token issue", "token", "Say `issue`, `rotate`", id="token-no-identity"),
        pytest.param("token show agent-x", "token", "Say `issue`, `rotate`", id="token-bad-sub"),
        pytest.param("token issue a b", "token", "Say `issue`, `rotate`", id="token-two-ids"),
    ],
)
def test_owner_and_token_usage_errors(text: str, verb: str, problem: str) -> None:
    error = _usage_error(text)
    assert problem in str(error)
    assert USAGE[verb] in str(error)


# --- help, prefix, unknown verbs, limits ------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("", HelpCommand(), id="empty"),
        pytest.param("   \t\n ", HelpCommand(), id="whitespace-only"),
        pytest.param("/leash", HelpCommand(), id="prefix-only"),
        pytest.param("/leash   ", HelpCommand(), id="prefix-and-spaces"),
        pytest.param("help", HelpCommand(None), id="help"),
        pytest.param("help REQUEST", HelpCommand("request"), id="help-topic-lowered"),
        pytest.param("/leash help owner", HelpCommand("owner"), id="prefix-help-topic"),
    ],
)
def test_help_parses(text: str, expected: HelpCommand) -> None:
    assert parse(text) == expected


BARE_VERBS_THAT_PARSE = {
    "requests": ListRequestsCommand("mine"),
    "grants": ListGrantsCommand("mine"),
    "owns": OwnsCommand(None),
    "identities": IdentitiesCommand(None),
    "whoami": WhoAmICommand(),
    "help": HelpCommand(None),
}
BARE_VERBS_THAT_NEED_MORE = sorted(set(USAGE) - set(BARE_VERBS_THAT_PARSE))


@pytest.mark.parametrize("verb", sorted(BARE_VERBS_THAT_PARSE), ids=sorted(BARE_VERBS_THAT_PARSE))
def test_bare_verb_parses(verb: str) -> None:
    assert parse(verb) == BARE_VERBS_THAT_PARSE[verb]


@pytest.mark.parametrize("verb", BARE_VERBS_THAT_NEED_MORE, ids=BARE_VERBS_THAT_NEED_MORE)
def test_bare_verb_shows_its_usage(verb: str) -> None:
    assert USAGE[verb] in str(_usage_error(verb))


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        pytest.param("frobnicate agent-x", "'frobnicate' is not a Leash command", id="unknown"),
        pytest.param("FROBNICATE", "'frobnicate' is not a Leash command", id="unknown-lowered"),
        pytest.param("/leashwhoami", "is not a Leash command", id="prefix-glued-to-verb"),
        pytest.param("x" * 100, f"'{'x' * 30}' is not a Leash command", id="long-verb-truncated"),
    ],
)
def test_unknown_verb(text: str, shown: str) -> None:
    error = _usage_error(text)
    assert shown in str(error)
    assert "Type `help`" in str(error)
    assert "x" * 31 not in str(error)


def test_input_at_the_limit_is_parsed() -> None:
    text = "identities " + "x" * (MAX_COMMAND - len("identities "))
    assert len(text) == MAX_COMMAND
    assert parse(text) == IdentitiesCommand("x" * (MAX_COMMAND - len("identities ")))


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("identities " + "x" * MAX_COMMAND, id="over-limit"),
        pytest.param("request " + "y" * 10_000, id="far-over-limit-before-parsing"),
        pytest.param(" " * (MAX_COMMAND + 1), id="whitespace-over-limit"),
    ],
)
def test_over_long_input_is_refused(text: str) -> None:
    assert f"longer than {MAX_COMMAND} characters" in str(_usage_error(text))


def test_usage_error_is_an_invalid_input_error_with_its_code() -> None:
    error = _usage_error("cancel")
    assert isinstance(error, InvalidInputError)
    assert error.code == "usage"
    assert error.status == 400


@pytest.mark.parametrize("action", ["claim", "confirm", "assign"])
def test_owner_actions_name_one_identity(action: str) -> None:
    assert parse(f"owner {action.upper()} arn:aws:iam::1:role/a") == OwnerActionCommand(
        action, "arn:aws:iam::1:role/a"
    )
