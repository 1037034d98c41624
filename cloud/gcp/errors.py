"""Turn google-api-core, gRPC and google-auth errors into `cloud.base` errors at the edge."""

from __future__ import annotations

from google.api_core import exceptions as api
from google.auth import exceptions as auth

from cloud.base import (
    CloudAccessDeniedError,
    CloudConfigurationError,
    CloudConflictError,
    CloudError,
    CloudLimitError,
    CloudNotFoundError,
    CloudThrottledError,
    CloudUnavailableError,
)

# `code` of the CloudConflictError an etag mismatch gives: the write may be retried re-reading.
ETAG_CONFLICT_CODES = frozenset({"Aborted", "Conflict"})
# Google reports a count or size limit as INVALID_ARGUMENT or FAILED_PRECONDITION; these words
# tell such a refusal apart from a malformed request.
LIMIT_WORDS = ("limit", "exceed", "too many", "maximum", "quota", "at most")


def translate(error: BaseException, *, operation: str, target: str) -> CloudError:
    """Return the `CloudError` that says why `operation` on `target` failed."""
    if isinstance(error, CloudError):
        return error
    where = f"GCP {operation} for {target}"
    if isinstance(error, api.GoogleAPICallError):
        return _from_call_error(error, where)
    status = _rpc_status(error)
    if status is not None:  # a raw grpc.RpcError that escaped the GAPIC wrappers
        kind, code = _RPC_STATUSES.get(status, (CloudError, status))
        return kind(f"{where} failed ({code}): {error}", code=code)
    if isinstance(error, api.RetryError):
        cause = error.cause
        if cause is not None and cause is not error:
            return translate(cause, operation=operation, target=target)
        return CloudUnavailableError(f"{where} failed after retries: {error}", code="RetryError")
    if isinstance(error, auth.DefaultCredentialsError):
        return CloudConfigurationError(
            f"{where} failed: no Google credentials are configured ({error})",
            code="DefaultCredentialsError",
        )
    if isinstance(error, auth.RefreshError):
        return CloudConfigurationError(
            f"{where} failed: Leash's Google credentials could not be refreshed ({error})",
            code="RefreshError",
        )
    if isinstance(error, auth.TransportError | OSError | TimeoutError):
        # requests' ConnectionError and Timeout are OSErrors: the REST transport's failures.
        return CloudUnavailableError(
            f"{where} failed: Google Cloud could not be reached ({error})",
            code=type(error).__name__,
        )
    return CloudError(f"{where} failed unexpectedly: {error!r}", code=type(error).__name__)


# gRPC status name -> (error class, code) for raw RpcErrors; codes match the GAPIC classes'.
_RPC_STATUSES: dict[str, tuple[type[CloudError], str]] = {
    "PERMISSION_DENIED": (CloudAccessDeniedError, "PermissionDenied"),
    "UNAUTHENTICATED": (CloudAccessDeniedError, "Unauthenticated"),
    "NOT_FOUND": (CloudNotFoundError, "NotFound"),
    "ALREADY_EXISTS": (CloudConflictError, "AlreadyExists"),
    "ABORTED": (CloudConflictError, "Aborted"),
    "RESOURCE_EXHAUSTED": (CloudThrottledError, "ResourceExhausted"),
    "UNAVAILABLE": (CloudUnavailableError, "ServiceUnavailable"),
    "DEADLINE_EXCEEDED": (CloudUnavailableError, "DeadlineExceeded"),
    "INTERNAL": (CloudUnavailableError, "InternalServerError"),
}


def _rpc_status(error: BaseException) -> str | None:
    """Return the status name of a gRPC call error (grpc ships no types), else None."""
    if not any(
        cls.__name__ == "RpcError" and cls.__module__.startswith("grpc")
        for cls in type(error).__mro__
    ):
        return None
    code = getattr(error, "code", None)
    status = code() if callable(code) else None
    name = getattr(status, "name", None)
    return name if isinstance(name, str) else "UNKNOWN"


def _from_call_error(error: api.GoogleAPICallError, where: str) -> CloudError:
    code = type(error).__name__
    text = f"{where} failed ({code}): {error.message or error}"
    if isinstance(error, api.PermissionDenied | api.Unauthenticated | api.Unauthorized):
        return CloudAccessDeniedError(text, code=code)
    if isinstance(error, api.NotFound):
        return CloudNotFoundError(text, code=code)
    if isinstance(error, api.AlreadyExists):
        return CloudConflictError(text, code=code)
    if isinstance(error, api.Conflict):  # Aborted (gRPC) and HTTP 409: the etag moved on
        return CloudConflictError(text, code=code)
    if isinstance(error, api.TooManyRequests):  # ResourceExhausted included
        return CloudThrottledError(text, code=code)
    if isinstance(error, api.MethodNotImplemented):
        return CloudError(text, code=code)
    if isinstance(error, api.ServerError):  # Unavailable, DeadlineExceeded, Internal, ...
        return CloudUnavailableError(text, code=code)
    if isinstance(error, api.InvalidArgument | api.FailedPrecondition | api.BadRequest):
        message = str(error.message or "").lower()
        if any(word in message for word in LIMIT_WORDS):
            return CloudLimitError(text, code=code)
    return CloudError(text, code=code)


def is_not_found(error: BaseException) -> bool:
    """Say whether an error means the addressed object does not exist."""
    return isinstance(error, CloudNotFoundError | api.NotFound) or _rpc_status(error) == "NOT_FOUND"


def is_etag_conflict(error: BaseException) -> bool:
    """Say whether a write failed because the object changed since it was read."""
    return isinstance(error, CloudConflictError) and error.code in ETAG_CONFLICT_CODES
