"""`WEBHOOK_AUTH`: the scheme a webhook function authenticates its callers with, applied in two
phases: the headers first, before the body is read (missing, malformed, out of tolerance: 401 at
once), then the body against the current secrets. The secret comes from Secret Manager
(`WEBHOOK_SECRET`, cached) or, locally, `WEBHOOK_SECRET_VALUE`; one secret per line, any of which
verifies (rotation)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, get_args

from function.auth.basic import Basic
from function.auth.common import Headers, Scheme, Verify, secret_lines
from function.auth.delivery_ids import delivery_id
from function.auth.hmac_sha256 import DEFAULT_SIGNATURE_HEADER, HmacSha256
from function.auth.slack import Slack
from function.auth.standard_webhooks import StandardWebhooks
from function.auth.stripe import Stripe
from function.auth.token import Token
from function.clients.secret_manager import SecretCache
from function.model.delivery import DeliveryId
from function.model.errors import ConfigError
from function.timing import Clock, Deadline

SigningMode = Literal["standard-webhooks", "hmac-sha256", "token", "basic", "slack", "stripe"]
AuthMode = Literal[SigningMode, "none"]
SIGNING_MODES: tuple[SigningMode, ...] = get_args(SigningMode)
WEBHOOK_AUTH_MODES: tuple[AuthMode, ...] = (*SIGNING_MODES, "none")
# Modes whose signature covers the body (so an id in it), and the Standard Webhooks headers.
_BODY_SIGNED: frozenset[AuthMode] = frozenset(
    {"standard-webhooks", "hmac-sha256", "slack", "stripe"}
)


class Presented:
    """A request's credentials as its headers present them, checked for form; `verify` checks
    them against the body and the current secrets."""

    def __init__(self, authenticator: Authenticator, verify: Verify | None) -> None:
        self._authenticator = authenticator
        self._verify = verify

    def verify(self, body: bytes, deadline: Deadline) -> None:
        """`Unauthenticated` unless the credentials prove the sender (over the raw `body`)."""
        if self._verify is not None:
            self._verify(body, self._authenticator.secrets(deadline))


class Authenticator:
    """Checks each HTTP request against the configured `WEBHOOK_AUTH` mode; the secret is read
    through `cache` (`secret_name`, a full version name) or given (`secret_value`, local runs)."""

    def __init__(
        self,
        mode: AuthMode,
        *,
        cache: SecretCache,
        clock: Clock,
        secret_name: str | None = None,
        secret_value: str | None = None,
        tolerance: int = 300,
        signature_header: str = DEFAULT_SIGNATURE_HEADER,
        token_header: str | None = None,
    ) -> None:
        assert mode == "none" or secret_name or secret_value is not None, "checked by config"
        self.mode = mode
        self._cache = cache
        self._clock = clock
        self._secret_name = secret_name
        self._secret_value = secret_value
        schemes: dict[AuthMode, Scheme | None] = {
            "standard-webhooks": StandardWebhooks(tolerance),
            "hmac-sha256": HmacSha256(signature_header),
            "token": Token(token_header),
            "basic": Basic(),
            "slack": Slack(tolerance),
            "stripe": Stripe(tolerance),
            "none": None,
        }
        self._scheme = schemes[mode]

    def read(self, headers: Headers) -> Presented:
        """The request's credentials, checked for form before the body is read: raises
        `Unauthenticated` when they are missing, malformed or (a signed timestamp) too old."""
        if self._scheme is None:
            return Presented(self, None)
        return Presented(self, self._scheme.read(headers, self._clock.wall()))

    def check(self, headers: Headers, body: bytes, deadline: Deadline) -> None:
        """Raise `Unauthenticated` unless the request proves its sender (over the raw `body`)."""
        self.read(headers).verify(body, deadline)

    def delivery_id(self, headers: Headers, body: Mapping[str, Any] | None) -> DeliveryId | None:
        """The sender's id of this delivery, where it gives one (`delivery_ids`)."""
        return delivery_id(
            headers,
            body,
            signed_headers=self.mode == "standard-webhooks",
            signed_body=self.mode in _BODY_SIGNED,
        )

    def secrets(self, deadline: Deadline) -> list[str]:
        """The current secrets (read through the cache), one per line."""
        if self._secret_name is not None:
            value = self._cache.get(self._secret_name, deadline)
        else:
            assert self._secret_value is not None
            value = self._secret_value
        found = secret_lines(value)
        if not found:
            raise ConfigError("The webhook secret is empty")
        return found
