"""Payloads as they arrive: the raw body as a JSON object (or a form's fields), and the Pub/Sub
wrappings around it.
Every refusal is `MalformedRequest` (or `PayloadTooLarge`), saying what is wrong and where.
"""

from __future__ import annotations

import base64
import binascii
import json
import urllib.parse
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError

from function.core.links import json_kind
from function.model.errors import MalformedRequest, PayloadTooLarge


def parse_json_object(raw: bytes, what: str = "The request body") -> dict[str, Any]:
    """Decode UTF-8 JSON that must be an object; anything else is `MalformedRequest`."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise MalformedRequest(f"{what} is not UTF-8 text (bad byte at {error.start})") from None
    try:
        value = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constants)
    except json.JSONDecodeError as error:
        raise MalformedRequest(
            f"{what} is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    except ValueError as error:  # our hooks, or an integer too long to convert
        raise MalformedRequest(f"{what} is not valid JSON: {error}") from None
    except RecursionError:
        raise MalformedRequest(f"{what} is nested too deeply") from None
    if not isinstance(value, dict):
        raise MalformedRequest(f"{what} must be a JSON object, not {json_kind(value)}")
    return value


def parse_form(raw: bytes) -> dict[str, Any]:
    """An HTML form body (`a=1&b=2`) as a JSON-like object of its fields: a field given once is
    a string, a field repeated a list of its values, in order."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise MalformedRequest(f"The form is not UTF-8 text (bad byte at {error.start})") from None
    fields: dict[str, Any] = {}
    for name, value in urllib.parse.parse_qsl(text, keep_blank_values=True):
        if name not in fields:
            fields[name] = value
        elif isinstance(fields[name], list):
            fields[name].append(value)
        else:
            fields[name] = [fields[name], value]
    return fields


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"the key {json.dumps(key[:64])} appears twice in one object")
        result[key] = value
    return result


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


class PubsubMessage(BaseModel):
    """A Pub/Sub message as push and Eventarc deliver it (`data` is base64)."""

    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)

    data: str
    message_id: str = Field(validation_alias=AliasChoices("messageId", "message_id"))
    attributes: dict[str, str] = Field(default_factory=dict)
    publish_time: str | None = Field(
        None, validation_alias=AliasChoices("publishTime", "publish_time")
    )
    ordering_key: str = Field("", validation_alias=AliasChoices("orderingKey", "ordering_key"))


class PushEnvelope(BaseModel):
    """The body of a Pub/Sub push request."""

    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)

    message: PubsubMessage
    subscription: str
    delivery_attempt: int | None = Field(None, validation_alias="deliveryAttempt")


def is_push_envelope(body: Mapping[str, Any]) -> bool:
    """A body is a push envelope when `message` is an object with a `messageId` and
    `subscription` is a string; anything else is a direct request."""
    message = body.get("message")
    return (
        isinstance(message, dict)
        and "messageId" in message
        and isinstance(body.get("subscription"), str)
    )


def parse_push_envelope(body: Mapping[str, Any]) -> PushEnvelope:
    """Validate a push envelope; a broken one is `MalformedRequest`."""
    return _wrapping(PushEnvelope, body, "The Pub/Sub push envelope")


def parse_pubsub_message(message: object) -> PubsubMessage:
    """Validate the `message` of an Eventarc Pub/Sub event; a broken one is `MalformedRequest`."""
    return _wrapping(PubsubMessage, message, "The Pub/Sub message")


def message_data(message: PubsubMessage) -> bytes:
    """A Pub/Sub message's `data`, decoded from base64."""
    try:
        return base64.b64decode(message.data, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedRequest("The Pub/Sub message's data is not valid base64") from None


def message_payload(data: bytes, limit: int) -> dict[str, Any]:
    """The JSON object a Pub/Sub message's (decoded) `data` carries, at most `limit` bytes."""
    if len(data) > limit:
        raise PayloadTooLarge(limit)
    return parse_json_object(data, "The Pub/Sub message's data")


_Wrapping = TypeVar("_Wrapping", bound=BaseModel)


def _wrapping(model: type[_Wrapping], value: object, what: str) -> _Wrapping:
    try:
        return model.model_validate(value)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise MalformedRequest(f"{what} is invalid: {where}: {first['msg']}") from None
