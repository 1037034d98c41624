"""Slack's request signature (v0), checked on the exact bytes before anything reads the body."""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping

MAX_AGE_SECONDS = 5 * 60  # what Slack's docs allow; older requests may be replays
# Strict shapes: anything else is refused before it is parsed, compared or hashed, so a
# hostile header (non-numeric, 5,000 digits, non-ASCII, truncated) is an answer, never an error.
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")


class RequestSignature:
    """Tells a request Slack signed with our signing secret from anything else."""

    def __init__(self, secret: str, *, now: Callable[[], float] = time.time) -> None:
        self._secret = secret.encode()
        self._now = now

    def refusal(self, body: bytes, headers: Mapping[str, str]) -> str | None:
        """Say why this is not Slack's request (a fixed phrase, not its content), or None."""
        timestamp = headers.get("X-Slack-Request-Timestamp")
        signature = headers.get("X-Slack-Signature")
        if timestamp is None or signature is None:
            return "signature headers missing"
        if not _TIMESTAMP.fullmatch(timestamp):
            return "timestamp malformed"
        if abs(self._now() - int(timestamp)) > MAX_AGE_SECONDS:
            return "timestamp too old or in the future"
        if not _SIGNATURE.fullmatch(signature):
            return "signature malformed"
        expected = hmac.new(self._secret, b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256)
        if not hmac.compare_digest("v0=" + expected.hexdigest(), signature):
            return "signature does not match"
        return None
