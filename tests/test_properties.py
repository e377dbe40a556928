"""Property-based tests (hypothesis), in-process through the real app: arbitrary JSON, unicode
(lone surrogates and control characters included), deep nesting, random bytes and header values.

For every input:
- the answer is a row of the status table, and never `INTERNAL`;
- nothing reaches Tulip unless the input is valid and its sender authenticated;
- valid input becomes exactly the Tulip call it should: its URL and the body
  `{"leftRecord", "rightRecord"}`, trimmed as documented.

"Valid" is what `openapi.yaml` says (its schemas, checked with jsonschema-rs, the validator
schemathesis uses), plus the rules a JSON Schema cannot state and the README does: both spellings
of a field may be given when they hold the same JSON value; a record written as a number must be
an integer literal (`1`, not `1.0`) of at most 512 digits; lone surrogates are refused. So these
tests also hold the document to what the function does.

The examples are the same on every run (see conftest.py); `HYPOTHESIS_PROFILE=explore` searches
afresh.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import jsonschema_rs
import pytest
import responses
from hypothesis import assume, given
from hypothesis import strategies as st

from function.auth.authenticator import SIGNING_MODES
from function.core.links import RECORD_MAX, Candidate, LinkPolicy, is_table_link_id, validate_links
from function.model.errors import InvalidPayload
from function.model.status_table import RULES, Outcome
from ops.sign import signed_headers
from tests.helpers import BASE_URL, LINK_ID, OPENAPI

# --- the document as an oracle -------------------------------------------------------------------


def _validator(name: str) -> Any:
    document = {"components": OPENAPI["components"], "$ref": f"#/components/schemas/{name}"}
    return jsonschema_rs.Draft202012Validator(document)


LINK_REQUEST = _validator("LinkRequest")
PUSH_ENVELOPE = _validator("PushEnvelope")
TABLE_LINK_ID = _validator("TableLinkId")
RECORD_ID = _validator("RecordId")
SPELLINGS = (
    ("tableLinkId", "table_link_id"),
    ("leftRecord", "left_record"),
    ("rightRecord", "right_record"),
)
LINK_FIELDS = {name for pair in SPELLINGS for name in pair} | {"action"}
Call = tuple[str, str, Any]  # method, path, JSON body


def _has_surrogate(value: object) -> bool:
    if isinstance(value, str):
        return any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    if isinstance(value, list):
        return any(_has_surrogate(v) for v in value)
    if isinstance(value, dict):
        return any(_has_surrogate(k) or _has_surrogate(v) for k, v in value.items())
    return False


def _same_json(a: object, b: object) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _depth(value: object) -> int:
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    return 0


def expected_call(body: dict[str, Any]) -> Call | None:
    """The one Tulip call a single-link `body` must make, or None when it must be refused."""
    fields = {k: v for k, v in body.items() if k in LINK_FIELDS}  # the rest is ignored
    if _has_surrogate(fields) or _depth(fields) > 20:
        return None  # a surrogate is always refused; a deep value is never a valid field
    for camel, snake in SPELLINGS:
        if camel in fields and snake in fields and _same_json(fields[camel], fields[snake]):
            del fields[snake]
    if not LINK_REQUEST.is_valid(fields):
        return None
    values = {camel: fields.get(camel, fields.get(snake)) for camel, snake in SPELLINGS}
    records = [values["leftRecord"], values["rightRecord"]]
    if any(
        isinstance(r, float) or (isinstance(r, int) and len(str(r)) > RECORD_MAX) for r in records
    ):
        return None
    left, right = (str(r).strip(ECMA_TRIM) for r in records)
    path = f"/api/v3/tableLinks/{values['tableLinkId']}/{fields.get('action', 'link')}"
    return ("PUT", path, {"leftRecord": left, "rightRecord": right})


def carried(envelope: dict[str, Any]) -> dict[str, Any] | None:
    """The link body a push envelope or Pub/Sub message carries, or None when it is broken."""
    if _has_surrogate(envelope) or not PUSH_ENVELOPE.is_valid(envelope):
        return None
    if isinstance(envelope.get("deliveryAttempt"), float):
        return None  # an integer literal, as for records
    try:
        data = json.loads(base64.b64decode(envelope["message"]["data"], validate=True))
    except (binascii.Error, ValueError):
        return None
    return data if isinstance(data, dict) else None


# --- what every answer must be ------------------------------------------------------------------

ROWS = {
    (status, rule.error_code)
    for outcome, rule in RULES.items()
    if outcome is not Outcome.INTERNAL
    for status in ({rule.status} if rule.status is not None else rule.tulip_statuses)
}


def assert_a_row(response: Any) -> None:
    error_code = None if response.status_code == 200 else response.json["errorCode"]
    assert (response.status_code, error_code) in ROWS, (response.status_code, response.json)


@contextmanager
def recorded_tulip() -> Iterator[list[Call]]:
    """Tulip answering 204 to every link call, recording each (no other call is expected)."""
    calls: list[Call] = []

    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        path = request.url.removeprefix(BASE_URL)
        calls.append((request.method, path, json.loads(request.body)))
        return 204, {}, ""

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_callback("PUT", re.compile(re.escape(BASE_URL) + r"/.*"), callback=answer)
        yield calls


def assert_exactly(calls: list[Call], expected: Call | None, response: Any) -> None:
    if expected is None:
        assert calls == [], calls
        assert response.status_code in (400, 413, 422), response.json
    else:
        assert calls == [expected]
        assert response.status_code == 200, response.json


# --- strategies ----------------------------------------------------------------------------------

ANY_CHARACTER = st.characters(exclude_categories=())  # lone surrogates and controls too
# What JavaScript's trim removes, by ECMAScript's definition (WhiteSpace and LineTerminator),
# written apart from the function's own list so that the two are checked against each other.
ECMA_TRIM = "\t\v\f\ufeff\n\r\u2028\u2029" + "".join(
    chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) == "Zs"
)
TEXT = st.text(ANY_CHARACTER, max_size=12)
# Strings near every documented edge: trimmed ends, controls inside, 512 characters.
RECORD_TEXT = st.builds(
    lambda before, middle, after: before + middle + after,
    st.text(st.sampled_from(ECMA_TRIM), max_size=3),
    st.one_of(
        TEXT,
        st.text(st.characters(codec="utf-8"), min_size=1, max_size=8),
        st.integers(1, 4).flatmap(lambda n: st.just("x" * (RECORD_MAX - 2 + n))),
        st.sampled_from(["WO-1001", "a b", "a\tb", "SN-\u00e9\u4e2d", "\x7f", "\u0085"]),
    ),
    st.text(st.sampled_from(ECMA_TRIM), max_size=3),
)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(TEXT, children, max_size=3),
    max_leaves=6,
)
# Deep, yet shallow enough for json.dumps here: deeper input is sent as raw text below.
DEEP = st.integers(10, 400).map(lambda n: json.loads("[" * n + "]" * n))
LINK_IDS = st.from_regex(r"[A-Za-z0-9_]{1,64}", fullmatch=True) | st.just(LINK_ID)
RECORDS = RECORD_TEXT | st.integers()
ACTIONS = st.sampled_from(["link", "unlink", "LINK", " link", "Unlink"])
WRONG = st.one_of(
    JSON,
    DEEP,
    st.sampled_from(["x" * 65, "bad id", "abc\n", "", "\u00e9", 1.0, 10**600, True]),
)


@st.composite
def link_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """A valid link body, then up to three changes (a field dropped, made wrong, given in both
    spellings or only the other one) among fields that are ignored."""
    body: dict[str, Any] = draw(st.dictionaries(TEXT, JSON | DEEP, max_size=2))
    body |= {"tableLinkId": draw(LINK_IDS), "leftRecord": draw(RECORDS)}
    body |= {"rightRecord": draw(RECORDS)}
    if draw(st.booleans()):
        body["action"] = draw(ACTIONS)
    for _ in range(draw(st.integers(0, 3))):
        camel, snake = draw(st.sampled_from(SPELLINGS))
        change = draw(st.sampled_from(["drop", "wrong", "both", "both differing", "snake"]))
        if change == "drop":
            body.pop(camel, None)
        elif change == "wrong":
            body[draw(st.sampled_from([camel, snake, "action"]))] = draw(WRONG)
        elif camel in body:
            value = body.pop(camel) if change == "snake" else body[camel]
            body[snake] = draw(RECORDS) if change == "both differing" else value
    return body


LINK_BODIES = link_bodies()


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


DATA = st.one_of(
    LINK_BODIES.map(lambda body: _b64(json.dumps(body).encode())),
    st.binary(max_size=40).map(_b64),
    TEXT,
    JSON,
)
MESSAGES = st.fixed_dictionaries(
    {"messageId": st.just("m-1") | TEXT | JSON},
    optional={
        "data": DATA,
        "attributes": st.dictionaries(TEXT, TEXT, max_size=2) | JSON,
        "publishTime": st.just("2026-11-27T05:00:00Z") | JSON,
        "message_id": TEXT,
    },
)
ENVELOPES = st.fixed_dictionaries(
    {"message": MESSAGES, "subscription": st.just("projects/p/subscriptions/s") | TEXT},
    optional={"deliveryAttempt": st.integers(1, 5) | JSON},
)


def post(client: Any, body: object, headers: dict[str, str] | None = None) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post("/", data=raw, content_type="application/json", headers=headers or {})


# --- the request model ---------------------------------------------------------------------------


@given(body=LINK_BODIES)
def test_a_link_body_makes_exactly_the_call_the_document_says(client, body):
    assume("links" not in body and "message" not in body)
    with recorded_tulip() as calls:
        response = post(client, body)
    assert_a_row(response)
    assert_exactly(calls, expected_call(body), response)


# Not JSON as RFC 8259 has it, though Python's json would read some of it: always 400.
NOT_QUITE_JSON = [
    b'{"leftRecord": NaN}',
    b'{"a": Infinity}',
    b'{"a": 1, "a": 2}',
    b"\xef\xbb\xbf{}",
    b'{"a": "\xff"}',
]


@given(
    raw=st.binary(max_size=200)
    | st.sampled_from(NOT_QUITE_JSON)
    | JSON.map(lambda v: json.dumps(v).encode())
)
def test_any_bytes_are_refused_cleanly_and_reach_nothing(client, raw):
    with recorded_tulip() as calls:
        response = post(client, raw)
    assert_a_row(response)
    if raw in NOT_QUITE_JSON:
        assert response.status_code == 400
    parsed: object = None
    with suppress(ValueError):
        parsed = json.loads(raw)
    if not (isinstance(parsed, dict) and (expected_call(parsed) or "links" in parsed)):
        assert calls == []


@given(depth=st.integers(1, 5000), where=st.sampled_from(["body", "leftRecord", "extra", "both"]))
def test_deep_nesting_is_refused_and_never_a_crash(client, depth, where):
    deep = "[" * depth + "]" * depth
    fields = f'"tableLinkId": "{LINK_ID}", "rightRecord": "R"'
    raw = {
        "body": deep,
        "leftRecord": f'{{{fields}, "leftRecord": {deep}}}',
        "extra": f'{{{fields}, "leftRecord": "L", "note": {deep}}}',
        "both": f'{{{fields}, "leftRecord": {deep}, "left_record": {deep}}}',
    }[where]
    with recorded_tulip() as calls:
        response = post(client, raw.encode())
    assert_a_row(response)
    if response.status_code == 400:  # too deep to parse at all (or, for "body", not an object)
        assert where == "body" or "nested too deeply" in response.json["message"]
        assert calls == []
    else:
        assert response.status_code == (200 if where == "extra" else 422)
        assert len(calls) == (1 if where == "extra" else 0)


# --- Pub/Sub decoding ----------------------------------------------------------------------------


@given(envelope=ENVELOPES)
def test_a_push_envelope_makes_exactly_the_call_its_data_says(push_client, envelope):
    with recorded_tulip() as calls:
        response = post(push_client, envelope)
    assert_a_row(response)
    data = carried(envelope)
    if data is None:
        assert calls == []
    elif "links" not in data:  # a batch's calls: test_batches.py
        assert_exactly(calls, expected_call(data), response)


@given(message=MESSAGES)
def test_an_eventarc_message_is_acked_only_when_done_or_hopeless(event_client, message):
    headers = {
        "ce-id": "1",
        "ce-specversion": "1.0",
        "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
        "ce-source": "//pubsub.googleapis.com/projects/p/topics/t",
    }
    body = {"message": message, "subscription": "projects/p/subscriptions/s"}
    with recorded_tulip() as calls:
        response = event_client.post("/", json=body, headers=headers)
    # Done: acked. Refused as invalid: can never succeed, so acked too (and logged whole).
    assert response.status_code == 200, response.data
    data = carried(body)
    if data is None:
        assert calls == []
    elif "links" not in data:  # a batch's calls: test_batches.py
        expected = expected_call(data)
        assert calls == ([] if expected is None else [expected])


# --- signature verifiers -------------------------------------------------------------------------

SECRETS = {"standard-webhooks": "whsec_" + _b64(b"p" * 24), "hmac-sha256": "s3", "token": "t0k",
           "basic": "ops:pa55", "slack": "8f742231b10e8888abcd99yyyzzz85a5", "stripe": "whsec_t3st"}  # fmt: skip
AUTH_HEADERS = [
    "webhook-id", "webhook-timestamp", "webhook-signature", "svix-id", "svix-timestamp",
    "svix-signature", "X-Hub-Signature-256", "Authorization", "X-Webhook-Token",
    "X-Slack-Signature", "X-Slack-Request-Timestamp", "Stripe-Signature",
]  # fmt: skip
HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=40)
HEADER_VALUES = st.one_of(
    HEADER_TEXT,
    st.binary(min_size=1, max_size=40).map(lambda b: "v1," + _b64(b)),
    st.binary(min_size=32, max_size=32).map(lambda b: "sha256=" + b.hex()),
    HEADER_TEXT.map(lambda t: "Bearer " + t),
    HEADER_TEXT.map(lambda t: "Basic " + _b64(t.encode())),
    st.binary(min_size=32, max_size=32).map(lambda b: "v0=" + b.hex()),
    st.binary(min_size=32, max_size=32).map(lambda b: f"t=1800000000,v1={b.hex()}"),
    st.integers(0, 2**40).map(str),
)
HEADERS = st.dictionaries(st.sampled_from(AUTH_HEADERS) | st.from_regex(r"X-[A-Za-z]{1,8}", fullmatch=True), HEADER_VALUES, max_size=5)  # fmt: skip


@pytest.mark.parametrize("mode", SIGNING_MODES)
@given(
    body=LINK_BODIES.map(lambda b: json.dumps(b).encode()) | st.binary(max_size=60),
    headers=HEADERS,
    how=st.sampled_from(["signed", "unsigned", "one header changed", "another body signed"]),
    data=st.data(),
)
def test_only_a_signed_request_reaches_tulip(client, env, clock, mode, body, headers, how, data):
    env.set(WEBHOOK_AUTH=mode, WEBHOOK_SECRET_VALUE=SECRETS[mode])
    if how != "unsigned":
        signed_body = body + b" " if how == "another body signed" else body
        correct = signed_headers(mode, SECRETS[mode], signed_body, now=clock.wall_now)
        headers = {k: v for k, v in headers.items() if k not in AUTH_HEADERS} | correct
        if how == "one header changed":
            name = data.draw(st.sampled_from(sorted(correct)))
            headers[name] = data.draw(HEADER_VALUES.filter(lambda v: v != correct[name]))
    # A token or a password covers no body: only there is a request signed for another body
    # authentic.
    authentic = how == "signed" or (how == "another body signed" and mode in ("token", "basic"))
    with recorded_tulip() as calls:
        response = post(client, body, headers)
    assert_a_row(response)
    if not authentic:
        assert (response.status_code, calls) == (401, []), how
        return
    assert response.status_code != 401
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and "links" not in parsed and "message" not in parsed:
        assert_exactly(calls, expected_call(parsed), response)


# --- the document's field patterns say what the validators do -------------------------------------


@given(value=st.text(st.sampled_from("aZ09_") | ANY_CHARACTER, max_size=70))
def test_the_table_link_id_pattern_is_the_validator(value):
    assume(not _has_surrogate(value))
    assert TABLE_LINK_ID.is_valid(value) == is_table_link_id(value)


@given(value=RECORD_TEXT)
def test_the_record_pattern_is_the_validator(value):
    assume(not _has_surrogate(value))
    candidate = Candidate({"tableLinkId": "A", "leftRecord": value, "rightRecord": "x"})
    try:
        validate_links([candidate], LinkPolicy(), counted_as="links")
        accepted = True
    except InvalidPayload:
        accepted = False
    assert RECORD_ID.is_valid(value) == accepted, repr(value)
