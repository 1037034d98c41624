"""The error tree every provider raises: only CloudError and its kinds leave a provider."""

from __future__ import annotations

from collections.abc import Collection

from cloud.base.values import IdentityKind, IdentityRef


class CloudError(Exception):
    """A cloud call failed; `retryable` says whether trying again may help."""

    retryable: bool = False

    def __init__(self, message: str, *, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class CloudAccessDeniedError(CloudError):
    """Leash's own credentials lack a permission."""


class CloudNotFoundError(CloudError):
    """The identity or object does not exist."""


class CloudLimitError(CloudError):
    """The cloud would refuse the write: a size or count limit would be exceeded."""


class CloudConflictError(CloudError):
    """The object changed since Leash read it, or is already in the state asked for."""


class CloudThrottledError(CloudError):
    """The cloud throttled us even after the SDK's retries."""

    retryable = True


class CloudUnavailableError(CloudError):
    """The cloud could not be reached or answered with a server error."""

    retryable = True


class CloudConfigurationError(CloudError):
    """The provider is not configured well enough to run."""


def check_identity(
    identity: IdentityRef,
    provider: str,
    kinds: Collection[IdentityKind],
    *,
    label: str | None = None,
) -> None:
    """Refuse an identity of another provider, or of a kind `provider` does not act on
    (`label` names it in that refusal; its name by default)."""
    if identity.provider != provider:
        raise CloudConfigurationError(
            f"the {provider} provider cannot act on {identity.provider} identity {identity.name}"
        )
    if identity.kind not in kinds:
        raise CloudConfigurationError(
            f"the {provider} provider cannot act on a {identity.kind} ({label or identity.name})"
        )
