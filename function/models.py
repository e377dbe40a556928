"""Payloads: the raw body as JSON, the Pub/Sub wrappings, and the link request (or batch of
them, `{"links": [...]}`) inside them.

Every refusal names the field (as the caller spelled it) and the problem. Choices made where the
contract is silent:

- Record ids are stripped of the characters JavaScript's `String.prototype.trim` removes (Tulip
  runs on Node and trims records so when they are created), not Python's wider `str.strip`,
  which would quietly eat control characters such as U+001F instead of refusing them.
- When both spellings of a field are given (`leftRecord` and `left_record`) they must be the same
  JSON value (`5` and `"5"` differ); then either is used.
- A JSON object with a key twice is malformed rather than "last one wins": the two values may
  disagree, and guessing which one the sender meant could link the wrong records.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import unicodedata
from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar, get_args

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
)
from pydantic_core import PydanticCustomError

from .outcomes import Failure, Outcome

TABLE_LINK_ID_MAX = 64
RECORD_MAX = 512
Action = Literal["link", "unlink"]
ACTIONS: tuple[Action, ...] = get_args(Action)
_TABLE_LINK_ID = re.compile(r"[A-Za-z0-9_]+")
# JavaScript's trim set: WhiteSpace (incl. every Zs) and LineTerminator.
JS_TRIM = "\t\n\v\f\r \u00a0\u1680\u2028\u2029\u202f\u205f\u3000\ufeff" + "".join(
    chr(c) for c in range(0x2000, 0x200B)
)
# (python attribute, camelCase name, snake_case name)
_SPELLINGS = (
    ("link_id", "tableLinkId", "table_link_id"),
    ("left", "leftRecord", "left_record"),
    ("right", "rightRecord", "right_record"),
)
_PUBLIC_NAME = {attr: camel for attr, camel, _ in _SPELLINGS}
Problem = dict[str, str]  # {"field": ..., "problem": ...}, as the 422 body lists them


class MalformedRequest(Failure):
    """The body is not a JSON object, or a Pub/Sub wrapping around it is broken."""

    outcome = Outcome.MALFORMED_REQUEST


class PayloadTooLarge(Failure):
    """The body (or a Pub/Sub message's data) is over `MAX_BODY_BYTES`."""

    outcome = Outcome.PAYLOAD_TOO_LARGE

    def __init__(self, limit: int) -> None:
        super().__init__(f"The payload is larger than MAX_BODY_BYTES ({limit} bytes)")


class InvalidPayload(Failure):
    """The JSON object is fine, its fields are not; `fields` lists each problem."""

    outcome = Outcome.INVALID_PAYLOAD

    def __init__(self, problems: list[Problem]) -> None:
        summary = "; ".join(f"{p['field']} {p['problem']}" for p in problems)
        super().__init__(f"The request's fields are invalid: {summary}", body={"fields": problems})
        self.problems = problems


def is_table_link_id(value: str) -> bool:
    """Whether `value` is a table link id we may put into a URL (full match, at most 64)."""
    return len(value) <= TABLE_LINK_ID_MAX and _TABLE_LINK_ID.fullmatch(value) is not None


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


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"the key {json.dumps(key[:64])} appears twice in one object")
        result[key] = value
    return result


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def json_kind(value: object) -> str:
    """How an error names a JSON value's type: `null`, `a string`, `an array`, ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number with a fraction or exponent"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


# --- Pub/Sub wrappings ---------------------------------------------------------------------------


class PubsubMessage(BaseModel):
    """A Pub/Sub message as push and Eventarc deliver it (`data` is base64)."""

    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)

    data: str
    message_id: str = Field(validation_alias=AliasChoices("messageId", "message_id"))
    attributes: dict[str, str] = Field(default_factory=dict)
    publish_time: str | None = Field(None, validation_alias="publishTime")


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


def message_payload(message: PubsubMessage, limit: int) -> dict[str, Any]:
    """The JSON object carried, base64-encoded, in a Pub/Sub message's `data`, at most `limit`
    bytes once decoded."""
    try:
        raw = base64.b64decode(message.data, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedRequest("The Pub/Sub message's data is not valid base64") from None
    if len(raw) > limit:
        raise PayloadTooLarge(limit)
    return parse_json_object(raw, "The Pub/Sub message's data")


ModelT = TypeVar("ModelT", bound=BaseModel)


def _wrapping(model: type[ModelT], value: object, what: str) -> ModelT:
    try:
        return model.model_validate(value)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise MalformedRequest(f"{what} is invalid: {where}: {first['msg']}") from None


# --- The link request ----------------------------------------------------------------------------

_OMITTED: Any = object()


def problem(kind: str, message: str) -> PydanticCustomError:
    """A validation error whose message is ours, word for word (for validators here and in
    `config`)."""
    return PydanticCustomError(kind, message)


def _check_link_id(value: object, info: ValidationInfo) -> str:
    context = info.context or {}
    if value is _OMITTED:
        value = context.get("default_table_link_id")
        if value is None:
            raise problem("required", "is required (no default TULIP_TABLE_LINK_ID is set)")
    if not isinstance(value, str):
        raise problem("type", f"must be a string, not {json_kind(value)}")
    if len(value) > TABLE_LINK_ID_MAX:
        raise problem("length", f"must be at most {TABLE_LINK_ID_MAX} characters")
    if not is_table_link_id(value):
        raise problem("pattern", "must contain only the letters A-Z and a-z, digits and _")
    allowed = context.get("allowed_table_link_ids")
    if allowed is not None and value not in allowed:
        raise problem("not_allowed", "is not one of the table links this function may change")
    return value


def _check_record(given: object) -> str:
    if isinstance(given, int) and not isinstance(given, bool):
        given = str(given)
    if not isinstance(given, str):
        raise problem("type", f"must be a string or an integer, not {json_kind(given)}")
    value = given.strip(JS_TRIM)
    if not value:
        raise problem("empty", "must not be empty or only whitespace")
    if len(value) > RECORD_MAX:
        raise problem("length", f"must be at most {RECORD_MAX} characters, not {len(value)}")
    for position, char in enumerate(value):
        if 0xD800 <= ord(char) <= 0xDFFF:
            raise problem(
                "surrogate",
                f"must not contain unpaired surrogates (U+{ord(char):04X} at position {position})",
            )
        if unicodedata.category(char) == "Cc":
            raise problem(
                "control",
                f"must not contain control characters (U+{ord(char):04X} at position {position})",
            )
    return value


def _check_action(value: object, info: ValidationInfo) -> Action:
    if value is _OMITTED:
        default: Action = (info.context or {}).get("default_action", "link")
        return default
    for action in ACTIONS:
        if value == action:  # only a str equals a str
            return action
    raise problem("action", 'must be "link" or "unlink" (lower case)')


_TableLinkId = Annotated[str, BeforeValidator(_check_link_id)]
_Action = Annotated[Action, BeforeValidator(_check_action)]
_TABLE_LINK_ID_NAMES = AliasChoices("tableLinkId", "table_link_id")


class LinkRequest(BaseModel):
    """A validated request: which link, which two records, link or unlink."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    link_id: _TableLinkId = Field(
        _OMITTED, validation_alias=_TABLE_LINK_ID_NAMES, validate_default=True
    )
    left: Annotated[str, BeforeValidator(_check_record)] = Field(
        validation_alias=AliasChoices("leftRecord", "left_record")
    )
    right: Annotated[str, BeforeValidator(_check_record)] = Field(
        validation_alias=AliasChoices("rightRecord", "right_record")
    )
    action: _Action = Field(_OMITTED, validate_default=True)

    @property
    def pair(self) -> tuple[str, str, str]:
        """What two requests must not change at the same time: the link and its two records."""
        return (self.link_id, self.left, self.right)


class _BatchDefaults(BaseModel):
    """The top level of a batch: a table link and an action for every item that has none."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    # The validators see an explicit null too (null is not "omitted"); only absence is None.
    link_id: Annotated[str | None, BeforeValidator(_check_link_id)] = Field(
        None, validation_alias=_TABLE_LINK_ID_NAMES
    )
    action: Annotated[Action | None, BeforeValidator(_check_action)] = None


def check_link(
    data: Mapping[str, Any],
    *,
    default_table_link_id: str | None = None,
    allowed_table_link_ids: frozenset[str] | None = None,
    default_action: Action = "link",
) -> LinkRequest | list[tuple[str, str]]:
    """Validate one link object: the request, or every problem found as (our field, problem)."""
    context = {
        "default_table_link_id": default_table_link_id,
        "allowed_table_link_ids": allowed_table_link_ids,
        "default_action": default_action,
    }
    problems = _spelling_conflicts(data)
    try:
        request = LinkRequest.model_validate(data, context=context)
    except ValidationError as error:
        return problems + [_field_problem(e) for e in error.errors(include_url=False)]
    return problems or request


def parse_link_request(
    data: Mapping[str, Any],
    *,
    default_table_link_id: str | None = None,
    allowed_table_link_ids: frozenset[str] | None = None,
) -> LinkRequest:
    """Validate a request object; every problem found is reported at once as `InvalidPayload`."""
    checked = check_link(
        data,
        default_table_link_id=default_table_link_id,
        allowed_table_link_ids=allowed_table_link_ids,
    )
    if isinstance(checked, LinkRequest):
        return checked
    raise InvalidPayload(_problems(checked))


def is_batch(body: Mapping[str, Any]) -> bool:
    """A body with `links` is a batch; one without is a single request."""
    return "links" in body


def parse_batch(
    body: Mapping[str, Any],
    *,
    default_table_link_id: str | None,
    allowed_table_link_ids: frozenset[str] | None,
    max_links: int,
) -> list[LinkRequest]:
    """Validate a batch `{"links": [...], "tableLinkId"?, "action"?}`: every item, before any
    call; one bad item refuses the whole batch, naming it (`links[3].rightRecord`)."""
    links = body["links"]
    if not isinstance(links, list) or not links or not all(isinstance(i, dict) for i in links):
        raise InvalidPayload(
            [{"field": "links", "problem": "must be a non-empty array of objects"}]
        )
    if len(links) > max_links:
        raise InvalidPayload(
            [
                {
                    "field": "links",
                    "problem": f"has {len(links)} items; at most MAX_BATCH_LINKS ({max_links}) "
                    "are allowed in one request",
                }
            ]
        )
    found = _spelling_conflicts(body, count=1)  # the top level may hold only tableLinkId
    try:
        defaults = _BatchDefaults.model_validate(
            body, context={"allowed_table_link_ids": allowed_table_link_ids}
        )
    except ValidationError as error:
        found += [_field_problem(e) for e in error.errors(include_url=False)]
    if found:
        raise InvalidPayload(_problems(found))
    requests = []
    problems: list[Problem] = []
    for index, item in enumerate(links):
        checked = check_link(
            item,
            default_table_link_id=defaults.link_id or default_table_link_id,
            allowed_table_link_ids=allowed_table_link_ids,
            default_action=defaults.action or "link",
        )
        if isinstance(checked, LinkRequest):
            requests.append(checked)
        else:
            problems += _problems(checked, within=f"links[{index}].")
    if problems:
        raise InvalidPayload(problems)
    return requests


def _problems(found: list[tuple[str, str]], within: str = "") -> list[Problem]:
    """(field, problem) pairs as the 422 body lists them, each field prefixed with `within`."""
    return [{"field": within + field, "problem": text} for field, text in found]


def _spelling_conflicts(data: Mapping[str, Any], count: int = 3) -> list[tuple[str, str]]:
    return [
        (camel, f"is given as both {camel} and {snake} with different values")
        for _, camel, snake in _SPELLINGS[:count]
        if camel in data and snake in data and not _same_json(data[camel], data[snake])
    ]


def _same_json(a: object, b: object) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _field_problem(error: Mapping[str, Any]) -> tuple[str, str]:
    name = str(error["loc"][0]) if error["loc"] else "(request)"
    text = "is required" if error["type"] == "missing" else error["msg"]
    return _PUBLIC_NAME.get(name, name), text
