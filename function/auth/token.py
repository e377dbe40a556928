"""A shared token, as sent: `Authorization: Bearer <token>` or `X-Webhook-Token: <token>`, or
raw in the one header a sender uses (`WEBHOOK_TOKEN_HEADER`: GitLab's `X-Gitlab-Token`, a
header of your choice in Power Automate or n8n). Nothing is signed."""

from __future__ import annotations

from dataclasses import dataclass

from function.auth.common import REPEATED, Headers, Verify, any_equal, authorization
from function.model.errors import Unauthenticated


@dataclass(frozen=True)
class Token:
    """The scheme, with the sender's own header (None: the two usual ones)."""

    header: str | None = None

    def read(self, headers: Headers, now: float) -> Verify:
        """The token, checked for form (present, once)."""
        presented = set()
        if self.header is not None:
            value = headers.get(self.header)
            if value is not None and value.strip():
                presented.add(value.strip())
        else:
            value = headers.get("Authorization")
            if value is not None:
                bearer = authorization(value, "Bearer")
                if bearer is None:
                    raise Unauthenticated("Authorization is not a bearer token")
                presented.add(bearer)
            header_token = headers.get("X-Webhook-Token")
            if header_token is not None:
                presented.add(header_token.strip())
        if len(presented) != 1:
            raise Unauthenticated("no token, or two different tokens")
        given = presented.pop().encode()

        def verify(body: bytes, secrets: list[str]) -> None:
            # A token is whatever the secret holds, commas included: a repeated header simply
            # fails to match (the hint says why it may have).
            if not any_equal([token.encode() for token in secrets], [given]):
                hint = (
                    f"a header sent twice arrives joined with a comma: {REPEATED}"
                    if b"," in given
                    else None
                )
                raise Unauthenticated("the token does not match", hint)

        return verify
