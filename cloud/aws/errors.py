"""Turn botocore exceptions into `cloud.base` errors that name the operation and the target."""

from __future__ import annotations

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from cloud.base import (
    CloudAccessDeniedError,
    CloudConfigurationError,
    CloudError,
    CloudLimitError,
    CloudNotFoundError,
    CloudThrottledError,
    CloudUnavailableError,
)

NOT_FOUND_CODES = frozenset({"NoSuchEntity", "NoSuchEntityException", "AccountNotFoundException"})
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequests",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
    }
)
LIMIT_CODES = frozenset({"LimitExceeded", "LimitExceededException"})
ACCESS_DENIED_CODES = frozenset(
    {"UnauthorizedOperation", "UnrecognizedClientException", "InvalidClientTokenId"}
)
# IAM reports an oversized document as MalformedPolicyDocument; these words tell it apart.
SIZE_WORDS = ("size", "length", "exceed", "too large", "too long")


def translate(error: Exception, *, operation: str, target: str) -> CloudError:
    """Return the `CloudError` that says why `operation` on `target` failed."""
    if isinstance(error, CloudError):
        return error
    if isinstance(error, ClientError):
        return _from_client_error(error, operation=operation, target=target)
    where = f"AWS {operation} for {target}"
    if isinstance(error, BotoConnectionError | ReadTimeoutError | ConnectionClosedError):
        return CloudUnavailableError(
            f"{where} failed: AWS could not be reached ({error})",
            code=type(error).__name__,
        )
    if isinstance(error, NoCredentialsError | PartialCredentialsError | NoRegionError):
        return CloudConfigurationError(
            f"{where} failed: AWS credentials or region are not configured ({error})",
            code=type(error).__name__,
        )
    if isinstance(error, BotoCoreError):
        return CloudError(f"{where} failed: {error}", code=type(error).__name__)
    return CloudError(f"{where} failed unexpectedly: {error!r}", code=type(error).__name__)


def _from_client_error(error: ClientError, *, operation: str, target: str) -> CloudError:
    details = error.response.get("Error", {})
    code = str(details.get("Code", "") or "Unknown")
    message = str(details.get("Message", "") or error)
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    text = f"AWS {operation} for {target} failed ({code}): {message}"
    if code.startswith("AccessDenied") or code in ACCESS_DENIED_CODES:
        return CloudAccessDeniedError(text, code=code)
    if code in NOT_FOUND_CODES:
        return CloudNotFoundError(text, code=code)
    if code in THROTTLING_CODES:
        return CloudThrottledError(text, code=code)
    if code in LIMIT_CODES:
        return CloudLimitError(text, code=code)
    if code == "MalformedPolicyDocument" and any(w in message.lower() for w in SIZE_WORDS):
        return CloudLimitError(text, code=code)
    if status >= 500 or code in {"ServiceUnavailable", "InternalFailure", "InternalError"}:
        return CloudUnavailableError(text, code=code)
    return CloudError(text, code=code)


def is_not_found(error: Exception) -> bool:
    """Say whether a botocore error means the addressed object does not exist."""
    if not isinstance(error, ClientError):
        return False
    return str(error.response.get("Error", {}).get("Code", "")) in NOT_FOUND_CODES
