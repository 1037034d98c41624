"""A stand-in for the Bot Framework token issuer: OpenID metadata, a JWKS, and signed tokens."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Collection, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

BOT_FRAMEWORK_ISSUER = "https://api.botframework.com"


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class BotFrameworkIssuer:
    """Sign channel tokens and serve their keys the way login.botframework.com does.

    The documents are served by a plain HTTP server in a daemon thread: botbuilder's
    JwtTokenExtractor fetches them with blocking `requests.get` from inside the event loop, so
    a server on that loop would deadlock. Each issuer serves under a unique path, because
    JwtTokenExtractor caches metadata per URL for a day and ports get reused across tests.
    """

    def __init__(
        self, *, issuer: str = BOT_FRAMEWORK_ISSUER, endorsements: tuple[str, ...] = ("msteams",)
    ) -> None:
        self.issuer = issuer
        self.endorsements = endorsements
        self.kid = f"leash-test-{uuid.uuid4().hex[:12]}"
        self.requests: list[str] = []  # paths fetched, oldest first
        self._key = _new_key()
        self._stranger_key: rsa.RSAPrivateKey | None = None
        self._prefix = f"/{uuid.uuid4().hex}"
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Serve the metadata and the keys on a free port of 127.0.0.1, in a daemon thread."""
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                issuer.requests.append(self.path)
                document = issuer._documents().get(self.path)
                payload = json.dumps(document or {"error": "not found"}).encode()
                self.send_response(200 if document is not None else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                """Keep test output quiet."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # so that stop() returns quickly
            name="bot-framework-issuer",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> BotFrameworkIssuer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def metadata_url(self) -> str:
        """Return the OpenID metadata URL (to_bot_from_channel_open_id_metadata_url)."""
        return f"{self._root()}/v1/.well-known/openidconfiguration"

    @property
    def jwks_url(self) -> str:
        """Return the URL of the signing keys, as the metadata's jwks_uri."""
        return f"{self._root()}/v1/.well-known/keys"

    def _root(self) -> str:
        if self._server is None:
            raise RuntimeError("BotFrameworkIssuer is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}{self._prefix}"

    # -- tokens ----------------------------------------------------------------------------

    def jwks(self) -> dict[str, Any]:
        """Return the JWKS document, with the signing key's kid, use and endorsements."""
        key = dict(RSAAlgorithm.to_jwk(self._key.public_key(), as_dict=True))
        key |= {"kid": self.kid, "use": "sig", "endorsements": list(self.endorsements)}
        return {"keys": [key]}

    def token(
        self,
        *,
        audience: str,
        service_url: str,
        issuer: str | None = None,
        expires_in: int = 3600,
        signed_by_stranger: bool = False,
        extra_claims: Mapping[str, Any] | None = None,
        without: Collection[str] = (),
    ) -> str:
        """Return an RS256 channel token for the bot's app id (audience) and the serviceUrl.

        botbuilder allows 5 minutes of clock skew: an expired token needs expires_in < -300.
        `without` names claims to leave out (e.g. "exp").
        """
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer if issuer is None else issuer,
            "aud": audience,
            "serviceurl": service_url,
            "nbf": now,
            "iat": now,
            "exp": now + expires_in,
            **(extra_claims or {}),
        }
        claims = {name: value for name, value in claims.items() if name not in without}
        if signed_by_stranger:
            self._stranger_key = self._stranger_key or _new_key()
            key = self._stranger_key
        else:
            key = self._key
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": self.kid})

    def authorization(self, *, audience: str, service_url: str) -> str:
        """Return an Authorization header value carrying a valid token."""
        return f"Bearer {self.token(audience=audience, service_url=service_url)}"

    def _documents(self) -> dict[str, Any]:
        metadata = {
            "issuer": self.issuer,
            "authorization_endpoint": "https://invalid.botframework.com",
            "jwks_uri": self.jwks_url,
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        }
        return {
            f"{self._prefix}/v1/.well-known/openidconfiguration": metadata,
            f"{self._prefix}/v1/.well-known/keys": self.jwks(),
        }
