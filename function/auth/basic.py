"""HTTP Basic auth (Azure DevOps service hooks, SAP Integration Suite, ServiceNow outbound REST,
many MES and ERP "HTTP call" steps): `Authorization: Basic base64(user:password)`, checked
against the secret's `user:password` lines. Nothing is signed."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from function.auth.common import Headers, Verify, any_equal, authorization
from function.model.errors import Unauthenticated


@dataclass(frozen=True)
class Basic:
    """The scheme."""

    def read(self, headers: Headers, now: float) -> Verify:
        """The user and password, checked for form."""
        value = headers.get("Authorization")
        if value is None:
            raise Unauthenticated("Authorization is missing")
        encoded = authorization(value, "Basic")
        if encoded is None:
            raise Unauthenticated("Authorization is not Basic")
        try:
            given = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise Unauthenticated("Authorization's Basic credentials are not base64") from None
        if b":" not in given:
            raise Unauthenticated("Authorization's Basic credentials are not user:password")

        def verify(body: bytes, secrets: list[str]) -> None:
            if not any_equal([pair.encode() for pair in secrets], [given]):
                raise Unauthenticated(
                    "the user and password do not match",
                    "the secret holds user:password lines, one per sender account",
                )

        return verify
