"""The one way every link is validated, whichever way it came, into a `Link`.

A link comes as a single request, as an item of a batch, or out of a `LINK_MAPPING` rule. Each
arrives as a `Candidate` (its values, and how a problem with each field is named), and
`validate_links` checks them all against the deployment's `LinkPolicy`: every problem of every
link is reported at once as `InvalidPayload`. `read_links` reads one of our own bodies. The
choices where the contract is silent: docs/design.md.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

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

from function.model.errors import FieldProblem, InvalidPayload
from function.model.link import ACTIONS, Action, Link

TABLE_LINK_ID_MAX = 64
RECORD_MAX = 512
_TABLE_LINK_ID = re.compile(r"[A-Za-z0-9_]+")
# JavaScript's trim set: WhiteSpace (incl. every Zs) and LineTerminator.
JS_TRIM = "\t\n\v\f\r \u00a0\u1680\u2028\u2029\u202f\u205f\u3000\ufeff" + "".join(
    chr(c) for c in range(0x2000, 0x200B)
)
# Each field's two spellings: our camelCase name, and snake_case.
_SPELLINGS = (
    ("tableLinkId", "table_link_id"),
    ("leftRecord", "left_record"),
    ("rightRecord", "right_record"),
)
# A problem pydantic names by attribute (a default it validated) is named by our camelCase name.
_PUBLIC_NAME = {"link_id": "tableLinkId", "left": "leftRecord", "right": "rightRecord"}


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


def is_table_link_id(value: str) -> bool:
    """Whether `value` is a table link id we may put into a URL (full match, at most 64)."""
    return len(value) <= TABLE_LINK_ID_MAX and _TABLE_LINK_ID.fullmatch(value) is not None


@dataclass(frozen=True)
class LinkPolicy:
    """What a deployment allows: the table link used when a link names none, the only table
    links a link may name (None: any), and the most links one request may hold."""

    default_table_link_id: str | None = None
    allowed_table_link_ids: frozenset[str] | None = None
    max_links: int = 50


@dataclass(frozen=True)
class Candidate:
    """One link as it was given, before validation.

    `values` holds its fields under the names the sender used. A problem with a field is named
    `prefix` + our field name (`links[3].rightRecord`), or as `names` says (a mapping names its
    rule and a fanned-out element: `LINK_MAPPING[1].rightRecord[0]`); where `sources` gives the
    expression a value came from, the problem quotes it. `default_table_link_id` and
    `default_action` stand in for a field that is absent (a batch's top level gives them).
    """

    values: Mapping[str, Any]
    prefix: str = ""
    names: Mapping[str, str] = field(default_factory=dict)
    sources: Mapping[str, str] = field(default_factory=dict)
    default_table_link_id: str | None = None
    default_action: Action = "link"

    def problem(self, name: str, text: str) -> FieldProblem:
        """A problem with our field `name`, named and worded for this candidate."""
        source = self.sources.get(name)
        if source is not None and name in self.values:
            text = f"{source} gave {json_kind(self.values[name])}: {text}"
        return {"field": self.names.get(name, self.prefix + name), "problem": text}


_OMITTED: Any = object()


def _check_link_id(value: object, info: ValidationInfo) -> str:
    context = info.context or {}
    if value is _OMITTED:
        value = context.get("default_table_link_id")
        if value is None:
            raise PydanticCustomError(
                "required", "is required (no default TULIP_TABLE_LINK_ID is set)"
            )
    if not isinstance(value, str):
        raise PydanticCustomError("type", f"must be a string, not {json_kind(value)}")
    if len(value) > TABLE_LINK_ID_MAX:
        raise PydanticCustomError("length", f"must be at most {TABLE_LINK_ID_MAX} characters")
    if not is_table_link_id(value):
        raise PydanticCustomError(
            "pattern", "must contain only the letters A-Z and a-z, digits and _"
        )
    allowed = context.get("allowed_table_link_ids")
    if allowed is not None and value not in allowed:
        raise PydanticCustomError(
            "not_allowed", "is not one of the table links this function may change"
        )
    return value


def _check_record(given: object) -> str:
    if isinstance(given, int) and not isinstance(given, bool):
        given = str(given)
    if not isinstance(given, str):
        raise PydanticCustomError("type", f"must be a string or an integer, not {json_kind(given)}")
    value = given.strip(JS_TRIM)
    if not value:
        raise PydanticCustomError("empty", "must not be empty or only whitespace")
    if len(value) > RECORD_MAX:
        raise PydanticCustomError(
            "length", f"must be at most {RECORD_MAX} characters, not {len(value)}"
        )
    for position, char in enumerate(value):
        if 0xD800 <= ord(char) <= 0xDFFF:
            raise PydanticCustomError(
                "surrogate",
                f"must not contain unpaired surrogates (U+{ord(char):04X} at position {position})",
            )
        if unicodedata.category(char) == "Cc":
            raise PydanticCustomError(
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
    raise PydanticCustomError("action", 'must be "link" or "unlink" (lower case)')


_TableLinkId = Annotated[str, BeforeValidator(_check_link_id)]
_Action = Annotated[Action, BeforeValidator(_check_action)]
_TABLE_LINK_ID_NAMES = AliasChoices("tableLinkId", "table_link_id")


class _LinkFields(BaseModel):
    """A link's fields, validated (`validate_links` makes a `Link` of them)."""

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


class _BatchDefaults(BaseModel):
    """The top level of a batch: a table link and an action for every item that has none."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    # The validators see an explicit null too (null is not "omitted"); only absence is None.
    link_id: Annotated[str | None, BeforeValidator(_check_link_id)] = Field(
        None, validation_alias=_TABLE_LINK_ID_NAMES
    )
    action: Annotated[Action | None, BeforeValidator(_check_action)] = None


def validate_links(
    candidates: Sequence[Candidate],
    policy: LinkPolicy,
    *,
    counted_as: str,
    found: Sequence[FieldProblem] = (),
) -> tuple[Link, ...]:
    """Every candidate validated against `policy`, or `InvalidPayload` listing every problem:
    `found` (met while reading the candidates), too many links (named `counted_as`), and each
    field of each candidate."""
    problems = list(found)
    if len(candidates) > policy.max_links:
        problems.append(
            {
                "field": counted_as,
                "problem": f"has {len(candidates)} links for one request; at most "
                f"MAX_BATCH_LINKS ({policy.max_links}) are allowed",
            }
        )
    links = []
    for candidate in candidates:
        context = {
            "default_table_link_id": candidate.default_table_link_id
            or policy.default_table_link_id,
            "allowed_table_link_ids": policy.allowed_table_link_ids,
            "default_action": candidate.default_action,
        }
        conflicts = _spelling_conflicts(candidate.values)
        problems += [candidate.problem(name, text) for name, text in conflicts]
        try:
            fields = _LinkFields.model_validate(candidate.values, context=context)
        except ValidationError as error:
            problems += [candidate.problem(*_field_problem(e)) for e in error.errors()]
            continue
        if not conflicts:
            links.append(Link(fields.link_id, fields.left, fields.right, fields.action))
    if problems:
        raise InvalidPayload(problems)
    return tuple(links)


@dataclass(frozen=True)
class Plan:
    """The validated links of one request, and whether it answers as a batch."""

    links: tuple[Link, ...]
    batch: bool


def read_links(body: Mapping[str, Any], policy: LinkPolicy) -> Plan:
    """One of our own bodies, validated: a batch when it has `links`
    (`{"links": [...], "tableLinkId"?, "action"?}`; one bad item refuses the whole batch, naming
    it: `links[3].rightRecord`), otherwise a single link."""
    if "links" not in body:
        return Plan(validate_links([Candidate(body)], policy, counted_as="links"), batch=False)
    items = body["links"]
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
        raise InvalidPayload(
            [{"field": "links", "problem": "must be a non-empty array of objects"}]
        )
    # The top level may hold only tableLinkId (in either spelling) and action.
    top: list[FieldProblem] = [
        {"field": name, "problem": text} for name, text in _spelling_conflicts(body, 1)
    ]
    try:
        defaults = _BatchDefaults.model_validate(
            body, context={"allowed_table_link_ids": policy.allowed_table_link_ids}
        )
    except ValidationError as error:
        top += [{"field": n, "problem": t} for n, t in map(_field_problem, error.errors())]
    if top:
        raise InvalidPayload(top)
    candidates = [
        Candidate(
            item,
            prefix=f"links[{index}].",
            default_table_link_id=defaults.link_id,
            default_action=defaults.action or "link",
        )
        for index, item in enumerate(items)
    ]
    return Plan(validate_links(candidates, policy, counted_as="links"), batch=True)


def _spelling_conflicts(data: Mapping[str, Any], count: int = 3) -> list[tuple[str, str]]:
    return [
        (camel, f"is given as both {camel} and {snake} with different values")
        for camel, snake in _SPELLINGS[:count]
        if camel in data and snake in data and not _same_json(data[camel], data[snake])
    ]


def _same_json(a: object, b: object) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _field_problem(error: Mapping[str, Any]) -> tuple[str, str]:
    """Pydantic's error as (our field name, our words)."""
    name = str(error["loc"][0]) if error["loc"] else "(request)"
    text = "is required" if error["type"] == "missing" else error["msg"]
    return _PUBLIC_NAME.get(name, name), text
