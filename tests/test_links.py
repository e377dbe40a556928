"""Payload validation: every rule of the request contract, field by field."""

from __future__ import annotations

import pytest

from function.core.links import Candidate, LinkPolicy, validate_links
from function.edge.payloads import (
    PubsubMessage,
    is_push_envelope,
    message_data,
    message_payload,
    parse_json_object,
)
from function.model.errors import InvalidPayload, MalformedRequest
from function.model.link import Link
from tests.helpers import b64


def parse_link_request(data, **policy) -> Link:
    """One link object, validated as every link is."""
    [link] = validate_links([Candidate(data)], LinkPolicy(**policy), counted_as="links")
    return link


def problems(data, **settings) -> dict[str, str]:
    with pytest.raises(InvalidPayload) as caught:
        parse_link_request(data, **settings)
    return {p["field"]: p["problem"] for p in caught.value.problems}


def valid(**fields):
    data = {"tableLinkId": "Link_1", "leftRecord": "L", "rightRecord": "R"}
    data.update(fields)
    return parse_link_request(data)


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("WO-1", "WO-1"),
        ("  padded\t\n", "padded"),
        ("\u00a0\u2003nbsp and em space\ufeff", "nbsp and em space"),
        ("inner  spaces kept", "inner  spaces kept"),
        (123, "123"),
        (-7, "-7"),
        (0, "0"),
        ("é" * 512, "é" * 512),
        ("😀", "😀"),
    ],
)
def test_records_are_normalised(given, kept):
    request = valid(leftRecord=given)
    assert request.left_record == kept


@pytest.mark.parametrize(
    ("given", "fragment"),
    [
        (True, "boolean"),
        (1.0, "fraction or exponent"),
        (None, "null"),
        ({"id": 1}, "object"),
        (["a"], "array"),
        ("", "empty"),
        ("   ", "empty"),
        ("x" * 513, "at most 512"),
        ("a\x00b", "control"),
        ("\x1fabc", "control"),  # Python's strip would have removed it silently
        ("a\x7fb", "control"),
        ("a\u0085b", "control"),
        ("\ud800", "surrogate"),
        (10**600, "at most 512"),
    ],
)
def test_bad_records_are_refused(given, fragment):
    found = problems({"tableLinkId": "L", "leftRecord": given, "rightRecord": "R"})
    assert list(found) == ["leftRecord"]
    assert fragment in found["leftRecord"]


def test_length_counts_characters_not_bytes():
    assert valid(rightRecord="€" * 512).right_record == "€" * 512


@pytest.mark.parametrize(
    "given",
    ["abc\n", "abc ", "a-b", "a/b", "../x", "ä", "", "x" * 65, "\uff41\uff42\uff43", 5, None],
)
def test_bad_table_link_ids_are_refused(given):
    assert "tableLinkId" in problems({"tableLinkId": given, "leftRecord": "L", "rightRecord": "R"})


def test_the_longest_table_link_id_passes():
    assert valid(tableLinkId="x" * 64).table_link_id == "x" * 64


def test_a_missing_table_link_id_needs_the_default():
    found = problems({"leftRecord": "L", "rightRecord": "R"})
    assert "TULIP_TABLE_LINK_ID" in found["tableLinkId"]
    request = parse_link_request({"leftRecord": "L", "rightRecord": "R"}, default_table_link_id="D")
    assert request.table_link_id == "D"


def test_null_is_not_omitted():
    found = problems(
        {"tableLinkId": None, "leftRecord": "L", "rightRecord": "R"}, default_table_link_id="D"
    )
    assert "null" in found["tableLinkId"]


def test_the_allowed_list_applies_to_given_ids():
    found = problems(
        {"tableLinkId": "Other", "leftRecord": "L", "rightRecord": "R"},
        allowed_table_link_ids=frozenset({"Mine"}),
    )
    assert "not one of" in found["tableLinkId"]


@pytest.mark.parametrize("action", ["LINK", "Link", "delete", None, 1, ""])
def test_action_is_link_or_unlink_exactly(action):
    assert "action" in problems(
        {"tableLinkId": "L", "leftRecord": "L", "rightRecord": "R", "action": action}
    )


def test_action_defaults_to_link():
    assert valid().action == "link"
    assert valid(action="unlink").action == "unlink"


def test_snake_case_spellings_are_accepted():
    request = parse_link_request(
        {"table_link_id": "T", "left_record": "L", "right_record": 9, "extra": {"ignored": 1}}
    )
    assert (request.table_link_id, request.left_record, request.right_record) == ("T", "L", "9")


def test_both_spellings_must_agree():
    same = parse_link_request(
        {"tableLinkId": "T", "leftRecord": "L", "left_record": "L", "rightRecord": "R"}
    )
    assert same.left_record == "L"
    found = problems(
        {"tableLinkId": "T", "leftRecord": "L", "left_record": "M", "rightRecord": "R"}
    )
    assert "both leftRecord and left_record" in found["leftRecord"]
    found = problems({"tableLinkId": "T", "leftRecord": 5, "left_record": "5", "rightRecord": "R"})
    assert "leftRecord" in found


def test_problems_name_the_spelling_the_caller_used():
    found = problems({"table_link_id": "T", "left_record": False, "right_record": "R"})
    assert list(found) == ["left_record"]


def test_every_problem_is_reported_at_once():
    found = problems({})
    assert set(found) == {"tableLinkId", "leftRecord", "rightRecord"}
    assert found["leftRecord"] == "is required"


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b'{"a": 1, "a": 2}', "twice"),
        (b'{"a": Infinity}', "Infinity"),
        (b"\xef\xbb\xbf{}", "not valid JSON"),
        (b'{"a": 1} trailing', "not valid JSON"),
        (b"null", "not null"),
        (b"1" * 5000, "not valid JSON"),
    ],
)
def test_json_that_is_not_a_plain_object_is_malformed(raw, fragment):
    with pytest.raises(MalformedRequest) as caught:
        parse_json_object(raw)
    assert fragment in caught.value.message


def test_envelope_detection_follows_the_contract():
    assert is_push_envelope({"message": {"messageId": "1"}, "subscription": "s"})
    assert not is_push_envelope({"message": {"data": "x"}, "subscription": "s"})
    assert not is_push_envelope({"message": "text", "subscription": "s"})
    assert not is_push_envelope({"message": {"messageId": "1"}})


def test_message_data_is_strict_base64_json_within_the_cap():
    message = PubsubMessage.model_validate({"data": b64({"a": 1}), "messageId": "1"})
    assert message_payload(message_data(message), 100) == {"a": 1}
    with pytest.raises(MalformedRequest):
        message_data(PubsubMessage(data="YQ", message_id="1"))  # no padding
    with pytest.raises(Exception, match="MAX_BODY_BYTES"):
        message_payload(message_data(message), 3)
