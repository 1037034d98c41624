"""The command grammar shared by every chat surface: text -> typed Command."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from bot.commands.grammar import posture as least_privilege_grammar
from bot.commands.grammar.posture import LeastPrivilegeCommand
from bot.commands.usage_error import UsageError
from bot.domain.durations import parse_duration
from bot.domain.text_safety import refusal

MAX_COMMAND = 4000

USAGE = {
    "request": (
        "request <identity> <permission-set | action…> [on <resource…>] "
        "for <duration> because <reason>"
    ),
    "approve": "approve <request-id> [note]",
    "deny": "deny <request-id> because <reason>",
    "cancel": "cancel <request-id>",
    "requests": "requests [mine|pending]",
    "grants": "grants [mine|all|<identity>]",
    "revoke": "revoke <grant-id>",
    "extend": "extend <grant-id> <duration> because <reason>",
    "owner": (
        "owner set <identity> <user> [backup <user>] [team <team>]  |  "
        "owner show|claim|confirm|assign <identity>"
    ),
    "owns": "owns [<user>]",
    "identities": "identities [filter]",
    "token": "token issue|rotate|list|revoke <identity>",
    **least_privilege_grammar.USAGE,
    "whoami": "whoami",
    "help": "help",
}


@dataclass(frozen=True, slots=True)
class RequestCommand:
    identity: str
    items: tuple[str, ...]
    resources: tuple[str, ...]
    duration: timedelta
    reason: str

    @property
    def permission_set(self) -> str | None:
        """One bare name is a permission set; an action (`s3:GetObject`), a GCP role
        (`roles/…`, `projects/…/roles/…`) or a role definition id never is."""
        if len(self.items) != 1:
            return None
        item = self.items[0]
        return None if item == "*" or ":" in item or "/" in item else item


@dataclass(frozen=True, slots=True)
class ApproveCommand:
    request_id: str
    note: str | None


@dataclass(frozen=True, slots=True)
class DenyCommand:
    request_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class CancelCommand:
    request_id: str


@dataclass(frozen=True, slots=True)
class ListRequestsCommand:
    scope: str


@dataclass(frozen=True, slots=True)
class ListGrantsCommand:
    scope: str


@dataclass(frozen=True, slots=True)
class RevokeCommand:
    grant_id: str


@dataclass(frozen=True, slots=True)
class ExtendCommand:
    grant_id: str
    duration: timedelta
    reason: str


@dataclass(frozen=True, slots=True)
class OwnerActionCommand:
    """`owner claim|confirm|assign <identity>`."""

    action: str
    identity: str


@dataclass(frozen=True, slots=True)
class OwnerSetCommand:
    identity: str
    primary: str
    backup: str | None
    team: str | None


@dataclass(frozen=True, slots=True)
class OwnerShowCommand:
    identity: str


@dataclass(frozen=True, slots=True)
class OwnsCommand:
    user: str | None


@dataclass(frozen=True, slots=True)
class IdentitiesCommand:
    filter: str | None


@dataclass(frozen=True, slots=True)
class TokenCommand:
    action: str
    identity: str


@dataclass(frozen=True, slots=True)
class WhoAmICommand:
    pass


@dataclass(frozen=True, slots=True)
class HelpCommand:
    topic: str | None = None


Command = (
    RequestCommand
    | ApproveCommand
    | DenyCommand
    | CancelCommand
    | ListRequestsCommand
    | ListGrantsCommand
    | RevokeCommand
    | ExtendCommand
    | OwnerSetCommand
    | OwnerShowCommand
    | OwnerActionCommand
    | OwnsCommand
    | IdentitiesCommand
    | TokenCommand
    | WhoAmICommand
    | HelpCommand
    | LeastPrivilegeCommand
)

__all__ = ["USAGE", "Command", "UsageError", "parse"]


def _usage(verb: str, problem: str) -> UsageError:
    return UsageError(f"{problem} Usage: `{USAGE[verb]}`")


def _split_because(text: str) -> tuple[str, str | None]:
    words = text.split(" ")
    for index, word in enumerate(words):
        if word.lower() == "because":
            return " ".join(words[:index]), " ".join(words[index + 1 :]).strip()
    return text, None


def parse(text: str) -> Command:
    """Parse one command line; raise UsageError with the right form when it does not fit."""
    if len(text) > MAX_COMMAND:
        raise UsageError(f"That command is longer than {MAX_COMMAND} characters.")
    unsafe = refusal(text, "That command", prose=True)  # its names are checked again as fields
    if unsafe is not None:
        raise UsageError(unsafe)
    cleaned = " ".join(text.replace("\u00a0", " ").split())
    if cleaned == "/leash" or cleaned.startswith("/leash "):
        cleaned = cleaned.removeprefix("/leash").strip()
    if not cleaned:
        return HelpCommand()
    verb, _, rest = cleaned.partition(" ")
    verb = verb.lower()
    parser = _PARSERS.get(verb)
    if parser is None:
        raise UsageError(f"'{verb[:30]}' is not a Leash command. Type `help` for the list.")
    return parser(rest.strip())


def _request(rest: str) -> Command:
    head, reason = _split_because(rest)
    if reason is None or not reason:
        raise _usage("request", "Say why you need it (because …).")
    words = head.split()
    fors = [i for i, w in enumerate(words) if w.lower() == "for"]
    if not fors:
        raise _usage("request", "Say for how long (for 30m, for 2h, …).")
    if len(fors) > 1:
        raise _usage("request", "Give one duration after `for`.")
    for_at = fors[0]
    duration_words = words[for_at + 1 :]
    if len(duration_words) != 1:
        raise _usage("request", "Give one duration after `for`.")
    duration = parse_duration(duration_words[0])
    body = words[:for_at]
    if len(body) < 2:
        raise _usage("request", "Name an identity and what it needs.")
    identity, remainder = body[0], body[1:]
    lowered = [w.lower() for w in remainder]
    if lowered.count("on") > 1:
        raise _usage("request", "Give one `on` list of resources.")
    if "on" in lowered:
        on_at = lowered.index("on")
        items, resources = _listed(remainder[:on_at]), _listed(remainder[on_at + 1 :])
        if not resources:
            raise _usage("request", "Name at least one resource after `on`.")
    else:
        items, resources = _listed(remainder), ()
    if not items:
        raise _usage("request", "Name a permission set or at least one action.")
    return RequestCommand(identity, items, resources, duration, reason)


def _listed(words: list[str]) -> tuple[str, ...]:
    """Split words that may be separated by commas as well as spaces."""
    return tuple(piece for word in words for piece in word.split(",") if piece)


def _approve(rest: str) -> Command:
    request_id, _, note = rest.partition(" ")
    if not request_id:
        raise _usage("approve", "Which request?")
    return ApproveCommand(request_id, note.strip() or None)


def _deny(rest: str) -> Command:
    head, reason = _split_because(rest)
    request_id = head.strip()
    if not request_id or " " in request_id:
        raise _usage("deny", "Which request?")
    if not reason:
        raise _usage("deny", f"Say why you deny {request_id} (because …).")
    return DenyCommand(request_id, reason)


def _single(verb: str, rest: str) -> str:
    words = rest.split()
    if len(words) != 1:
        raise _usage(verb, "Give exactly one id.")
    return words[0]


def _extend(rest: str) -> Command:
    head, reason = _split_because(rest)
    words = head.split()
    if len(words) != 2:
        raise _usage("extend", "Give the grant and how much longer.")
    if not reason:
        raise _usage("extend", "Say why it needs longer (because …).")
    return ExtendCommand(words[0], parse_duration(words[1]), reason)


def _owner(rest: str) -> Command:
    words = rest.split()
    if len(words) == 2 and words[0].lower() == "show":
        return OwnerShowCommand(words[1])
    if len(words) == 2 and words[0].lower() in ("claim", "confirm", "assign"):
        return OwnerActionCommand(words[0].lower(), words[1])
    if len(words) < 3 or words[0].lower() != "set":
        raise _usage("owner", "Say `set`, `show`, `claim`, `confirm` or `assign`.")
    identity, primary, options = words[1], words[2], words[3:]
    values: dict[str, str] = {}
    if len(options) % 2:
        raise _usage("owner", "Options come in pairs: backup <user>, team <team>.")
    for key, value in zip(options[::2], options[1::2], strict=True):
        if key.lower() not in ("backup", "team") or key.lower() in values:
            raise _usage("owner", f"Unknown or repeated option '{key[:20]}'.")
        values[key.lower()] = value
    return OwnerSetCommand(identity, primary, values.get("backup"), values.get("team"))


def _token(rest: str) -> Command:
    words = rest.split()
    if len(words) != 2 or words[0].lower() not in ("issue", "rotate", "list", "revoke"):
        raise _usage("token", "Say `issue`, `rotate`, `list` or `revoke` and the identity.")
    return TokenCommand(words[0].lower(), words[1])


def _scope(verb: str, rest: str, default: str, keywords: tuple[str, ...] = ()) -> str:
    """One optional word; known keywords are case-insensitive, other words kept as typed."""
    words = rest.split()
    if len(words) > 1:
        raise _usage(verb, "Give at most one filter.")
    if not words:
        return default
    return words[0].lower() if words[0].lower() in keywords else words[0]


def _requests(rest: str) -> Command:
    scope = _scope("requests", rest, "mine", ("mine", "pending"))
    if scope not in ("mine", "pending"):
        raise _usage("requests", f"'{scope[:30]}' is not a choice.")
    return ListRequestsCommand(scope)


_PARSERS: dict[str, Callable[[str], Command]] = {
    "request": _request,
    "approve": _approve,
    "deny": _deny,
    "cancel": lambda rest: CancelCommand(_single("cancel", rest)),
    "requests": _requests,
    "grants": lambda rest: ListGrantsCommand(_scope("grants", rest, "mine", ("mine", "all"))),
    "revoke": lambda rest: RevokeCommand(_single("revoke", rest)),
    "extend": _extend,
    "owner": _owner,
    "owns": lambda rest: OwnsCommand(_scope("owns", rest, "") or None),
    "identities": lambda rest: IdentitiesCommand(rest.strip() or None),
    "token": _token,
    "whoami": lambda rest: WhoAmICommand(),
    "help": lambda rest: HelpCommand(rest.strip().lower() or None),
    **least_privilege_grammar.PARSERS,
}
