"""Turn azure-core and azure-identity errors into `cloud.base` errors at the edge."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)

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

# Azure answers a PIM call in a tenant without Entra ID P2 (or Governance) with HTTP 400 and
# one of these codes, or with a message naming the licence.
PIM_UNLICENSED_CODES = frozenset(
    {"AadPremiumLicenseRequired", "PimNotEnabled", "TenantNotOnboardedToPim", "LicenseRequired"}
)
_PIM_UNLICENSED_WORDS = ("premium 2 license", "premium p2", "not onboarded to pim", "license")
# Role assignment or request ids that are already gone.
NOT_FOUND_CODES = frozenset(
    {"RoleAssignmentNotFound", "RoleAssignmentDoesNotExist", "RoleAssignmentScheduleNotFound"}
)
# Azure reports a count limit (4,000 role assignments per subscription, ...) as HTTP 400.
LIMIT_WORDS = ("limit", "exceed", "quota", "too many", "maximum")
# Longest Retry-After Leash waits before giving up and letting the caller retry later.
MAX_RETRY_AFTER = 60.0


def error_code(error: BaseException) -> str:
    """Return Azure's error code (`RoleAssignmentExists`, ...) or the exception type's name."""
    if isinstance(error, CloudError):
        return error.code
    details = getattr(error, "error", None)
    code = getattr(details, "code", None)
    return code if isinstance(code, str) and code else type(error).__name__


def _message(error: BaseException) -> str:
    details = getattr(error, "error", None)
    message = getattr(details, "message", None)
    return message if isinstance(message, str) and message else str(error)


def translate(error: BaseException, *, operation: str, target: str) -> CloudError:
    """Return the `CloudError` that says why `operation` on `target` failed."""
    if isinstance(error, CloudError):
        return error
    where = f"Azure {operation} for {target}"
    code = error_code(error)
    if isinstance(error, ClientAuthenticationError) and getattr(error, "status_code", None) is None:
        # azure-identity: no credential could be found or refreshed (CredentialUnavailableError).
        return CloudConfigurationError(
            f"{where} failed: Leash's Azure credentials are not usable ({error})", code=code
        )
    if isinstance(error, HttpResponseError) and error.status_code is not None:
        return _from_status(error, error.status_code, f"{where} failed ({code}): {_message(error)}")
    if isinstance(error, ServiceRequestError | ServiceResponseError | OSError | TimeoutError):
        return CloudUnavailableError(
            f"{where} failed: Azure could not be reached ({error})", code=code
        )
    if isinstance(error, AzureError):
        return CloudError(f"{where} failed: {error}", code=code)
    return CloudError(f"{where} failed unexpectedly: {error!r}", code=code)


def _from_status(error: HttpResponseError, status: int, text: str) -> CloudError:
    code = error_code(error)
    if status in (401, 403):
        return CloudAccessDeniedError(text, code=code)
    if status == 404 or code in NOT_FOUND_CODES:
        return CloudNotFoundError(text, code=code)
    if status in (409, 412):
        return CloudConflictError(text, code=code)
    if status == 429:
        return CloudThrottledError(text, code=code)
    if status >= 500:
        return CloudUnavailableError(text, code=code)
    if code not in PIM_UNLICENSED_CODES and any(w in _message(error).lower() for w in LIMIT_WORDS):
        return CloudLimitError(text, code=code)
    return CloudError(text, code=code)


def is_not_found(error: BaseException) -> bool:
    """Say whether an error means the addressed object does not exist (any more)."""
    return isinstance(error, CloudNotFoundError) or error_code(error) in NOT_FOUND_CODES


def is_pim_unlicensed(error: BaseException) -> bool:
    """Say whether Azure refused a PIM call because the tenant has no PIM licence."""
    if error_code(error) in PIM_UNLICENSED_CODES:
        return True
    text = str(error).lower()
    mentions_pim = "pim" in text or "premium" in text
    return mentions_pim and any(word in text for word in _PIM_UNLICENSED_WORDS)


def retry_after(error: BaseException) -> float | None:
    """Return the seconds a throttled answer asked to wait (Retry-After), if it said."""
    cause: BaseException | None = error
    while cause is not None and not isinstance(cause, HttpResponseError):
        cause = cause.__cause__
    response = getattr(cause, "response", None)
    headers = getattr(response, "headers", None) or {}
    value = headers.get("Retry-After") or headers.get("retry-after")
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = (moment - datetime.now(UTC)).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)
