"""`LINK_MAPPING`: a sender's own JSON read into our link fields with JMESPath rules.

`parse_link_mapping` compiles and checks the setting once (`MappingError` names the key at fault);
`LinkMapping.read` gives the candidates of every rule whose `when` holds, the problems found, or
`Ignored`. The rules' meaning: docs/senders.md; the choices where it is silent: docs/design.md.
"""

from __future__ import annotations

import dataclasses
import json
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

import jmespath
import jmespath.exceptions
import jmespath.functions
import jmespath.parser

from function import logs
from function.core.links import Candidate, json_kind
from function.model.errors import FieldProblem, MappingError
from function.model.results import Ignored

MappedField = Literal["tableLinkId", "leftRecord", "rightRecord", "action"]
MAPPED_FIELDS: tuple[MappedField, ...] = get_args(MappedField)
RECORD_FIELDS: tuple[MappedField, ...] = ("leftRecord", "rightRecord")
_REQUIRED: tuple[MappedField, ...] = RECORD_FIELDS
_KEYS = (*MAPPED_FIELDS, "when", "headers")
_HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}")
_FUNCTIONS = jmespath.functions.Functions().FUNCTION_TABLE


@dataclass(frozen=True)
class Expression:
    """One compiled JMESPath expression, with its text for messages."""

    text: str
    _compiled: jmespath.parser.ParsedResult

    def search(self, data: Any) -> Any:
        """The expression's value for `data`; a run-time error is `JMESPathError`."""
        return self._compiled.search(data)


@dataclass(frozen=True)
class MappingRule:
    """One mapping object: field expressions, and the condition under which they apply."""

    name: str  # how errors name the rule: "" for a lone object, "LINK_MAPPING[1]" in an array
    fields: Mapping[MappedField, Expression]
    when: Expression | None
    # Request headers (lower-case names) the rule needs, each with the values it takes.
    headers: Mapping[str, frozenset[str]] = dataclasses.field(default_factory=dict)

    def condition(self) -> str | None:
        """The rule's condition, as an ignored event's log line names it (None: always holds)."""
        parts = [
            f"header {name} in {sorted(values)}" for name, values in sorted(self.headers.items())
        ]
        if self.when is not None:
            parts.append(self.when.text)
        return " and ".join(parts) or None

    def field_name(self, field: str) -> str:
        """The name our field `field` has in errors: `rightRecord` or `LINK_MAPPING[1].rightRecord`."""
        return f"{self.name}.{field}" if self.name else field


@dataclass(frozen=True)
class Mapped:
    """What the mapping made of an event: its links, not yet validated (`links.validate_links`
    does that, as for every link), whether any fanned out, and the problems met evaluating the
    expressions (reported with the validation's)."""

    candidates: tuple[Candidate, ...]
    fanned_out: bool
    problems: tuple[FieldProblem, ...]


@dataclass(frozen=True)
class LinkMapping:
    """The rules of `LINK_MAPPING`, compiled."""

    rules: tuple[MappingRule, ...]

    def read(self, body: Any, headers: Mapping[str, str]) -> Mapped | Ignored:
        """Evaluate every rule against `body` and the request's `headers` (lower-case names):
        `Ignored` when no rule holds, else the links the holding rules give, in order."""
        holding = [rule for rule in self.rules if _holds(rule, body, headers)]
        if not holding:
            return Ignored(tuple(text for r in self.rules if (text := r.condition())))
        candidates: list[Candidate] = []
        problems: list[FieldProblem] = []
        fanned_out = False
        for rule in holding:
            made, fanned, found = _links_of(rule, body)
            candidates += made
            problems += found
            fanned_out |= fanned
        return Mapped(tuple(candidates), fanned_out, tuple(problems))

    def has_table_link_id(self) -> bool:
        """Whether every rule names its table link (else `TULIP_TABLE_LINK_ID` must)."""
        return all("tableLinkId" in rule.fields for rule in self.rules)


def parse_link_mapping(text: str) -> LinkMapping:
    """Read the `LINK_MAPPING` setting; a problem is `MappingError` naming the key at fault."""
    try:
        value = json.loads(text)
    except ValueError as error:
        raise MappingError(f"is not valid JSON ({error})") from None
    if isinstance(value, dict):
        return LinkMapping((_rule(value, ""),))
    if isinstance(value, list):
        if not value:
            raise MappingError("is an empty array: give at least one mapping object")
        return LinkMapping(tuple(_rule(item, f"LINK_MAPPING[{i}]") for i, item in enumerate(value)))
    raise MappingError(f"must be a JSON object or an array of them, not {json_kind(value)}")


def _rule(value: object, name: str) -> MappingRule:
    where = f"{name}: " if name else ""
    if not isinstance(value, dict):
        raise MappingError(f"{where}must be a JSON object, not {json_kind(value)}")
    unknown = sorted(set(value) - set(_KEYS))
    if unknown:
        raise MappingError(
            f"{where}unknown key {json.dumps(unknown[0])} (the keys are {', '.join(_KEYS)})"
        )
    for key in _REQUIRED:
        if key not in value:
            raise MappingError(f"{where}{key} is required")
    fields = {key: _compile(value[key], name, key) for key in MAPPED_FIELDS if key in value}
    when = _compile(value["when"], name, "when") if "when" in value else None
    headers = _headers(value["headers"], name) if "headers" in value else {}
    return MappingRule(name, fields, when, headers)


def _headers(value: object, rule: str) -> dict[str, frozenset[str]]:
    """A rule's `headers`: `{"X-GitHub-Event": "push"}`, or a list of the values it takes."""
    where = f"{rule}.headers" if rule else "headers"
    if not isinstance(value, dict) or not value:
        raise MappingError(f"{where} must be a JSON object of header names and their values")
    needed = {}
    for name, wanted in value.items():
        if not _HEADER_NAME.fullmatch(name):
            raise MappingError(f"{where}: {json.dumps(name[:100])} is not a header name")
        values = wanted if isinstance(wanted, list) else [wanted]
        if not values or not all(isinstance(v, str) for v in values):
            raise MappingError(f"{where}.{name} must be a string, or a non-empty array of strings")
        needed[name.lower()] = frozenset(values)
    return needed


def _compile(text: object, rule: str, key: str) -> Expression:
    where = f"{rule}.{key}" if rule else key
    if not isinstance(text, str):
        raise MappingError(f"{where} must be a JMESPath expression in a string")
    try:
        with warnings.catch_warnings():
            # `...` around a bare string: deprecated by JMESPath, documented by us.
            warnings.simplefilter("ignore", PendingDeprecationWarning)
            compiled = jmespath.compile(text)
    except jmespath.exceptions.JMESPathError as error:
        raise MappingError(f"{where} is not a JMESPath expression: {_one_line(error)}") from None
    _check_functions(compiled.parsed, where)
    return Expression(text, compiled)


def _check_functions(node: Mapping[str, Any], where: str) -> None:
    """Unknown functions and wrong argument counts, which JMESPath only finds at run time."""
    if node.get("type") == "function_expression":
        name, arguments = node["value"], len(node["children"])
        spec = _FUNCTIONS.get(name)
        if spec is None:
            raise MappingError(f"{where} calls an unknown function {name}()")
        signature = spec["signature"]
        variadic = bool(signature) and signature[-1].get("variadic", False)
        if arguments < len(signature) or (arguments > len(signature) and not variadic):
            expected = f"at least {len(signature)}" if variadic else str(len(signature))
            raise MappingError(
                f"{where} calls {name}() with {arguments} arguments; it takes {expected}"
            )
    for child in node.get("children", []):
        if isinstance(child, dict):
            _check_functions(child, where)


def _holds(rule: MappingRule, body: Any, headers: Mapping[str, str]) -> bool:
    if any(headers.get(name) not in values for name, values in rule.headers.items()):
        return False
    if rule.when is None:
        return True
    try:
        return truthy(rule.when.search(body))
    except jmespath.exceptions.JMESPathError as error:
        logs.emit(
            "WARNING",
            "mapping.when_failed",
            f"LINK_MAPPING's when failed on this event and counts as false: {_one_line(error)}",
            when=rule.when.text,
        )
        return False


def truthy(value: object) -> bool:
    """JMESPath's truth: false, null, and empty strings, arrays and objects are false."""
    if value is None or value is False:
        return False
    return not (isinstance(value, (str, list, dict)) and not value)


def _links_of(rule: MappingRule, body: Any) -> tuple[list[Candidate], bool, list[FieldProblem]]:
    """The pairs one holding rule gives, whether it fanned out, and the problems found."""
    values: dict[str, Any] = {}
    problems: list[FieldProblem] = []
    for field, expression in rule.fields.items():
        try:
            value = expression.search(body)
        except jmespath.exceptions.JMESPathError as error:
            problems.append(_problem(rule, field, f"{expression.text} failed: {_one_line(error)}"))
            continue
        if value is None:
            problems.append(_problem(rule, field, f"{expression.text} gave null"))
        elif isinstance(value, list) and field in RECORD_FIELDS and not value:
            problems.append(_problem(rule, field, f"{expression.text} gave an empty array"))
        else:
            values[field] = value
    lists = {f: v for f, v in values.items() if f in RECORD_FIELDS and isinstance(v, list)}
    if len(lists) == 2 and len(lists["leftRecord"]) != len(lists["rightRecord"]):
        left, right = (rule.fields[f].text for f in RECORD_FIELDS)
        problems.append(
            _problem(
                rule,
                "rightRecord",
                f"{right} gave {len(lists['rightRecord'])} values and {left} gave "
                f"{len(lists['leftRecord'])}: arrays on both sides pair by position and must be "
                "of the same length",
            )
        )
    if problems:
        return [], bool(lists), problems
    expressions: dict[str, str] = {f: expression.text for f, expression in rule.fields.items()}
    links = []
    for position in range(max((len(v) for v in lists.values()), default=1)):
        pair = dict(values)
        names = {field: rule.field_name(field) for field in values}
        for field, items in lists.items():
            pair[field] = items[position]
            names[field] = f"{names[field]}[{position}]"
        links.append(Candidate(pair, names=names, sources=expressions))
    return links, bool(lists), []


def _problem(rule: MappingRule, field: str, problem: str) -> FieldProblem:
    return {"field": rule.field_name(field), "problem": problem}


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())
