"""Typed domain errors; each carries the sentence a user should read."""

from __future__ import annotations


class LeashError(Exception):
    """Base of every error a user may be shown; `str()` is the user message.

    `field` names the input at fault (identity, permissions, resources, duration, reason) so a
    form can show the message next to it.
    """

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotFoundError(LeashError):
    status = 404
    code = "not_found"


class UnknownIdentityError(NotFoundError):
    code = "unknown_identity"


class AmbiguousIdentityError(LeashError):
    code = "ambiguous_identity"


class UnknownPermissionSetError(LeashError):
    code = "unknown_permission_set"


class UnknownRequestError(NotFoundError):
    code = "unknown_request"


class UnknownGrantError(NotFoundError):
    code = "unknown_grant"


class InvalidInputError(LeashError):
    code = "invalid_input"


class InvalidDurationError(InvalidInputError):
    code = "invalid_duration"


class DurationTooLongError(InvalidInputError):
    code = "duration_too_long"


class NotAllowedError(LeashError):
    status = 403
    code = "not_allowed"


class AlreadyDecidedError(LeashError):
    status = 409
    code = "already_decided"


class RequestExpiredError(LeashError):
    status = 409
    code = "request_expired"


class GrantStateError(LeashError):
    status = 409
    code = "grant_state"


class CloudFailureError(LeashError):
    status = 502
    code = "cloud_failure"


class IllegalTransitionError(LeashError):
    """A move between states that the transition table (bot.domain.states) does not allow.

    Raised before anything is written: it names a bug in the caller, never a race (a race is a
    compare-and-set that finds the row moved on, and answers False).
    """

    status = 409
    code = "illegal_transition"
