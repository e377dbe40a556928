"""Every row of docs/senders.md's sender table, through the real app: the row's settings, a request
made as that sender makes it (signed with its own library where one is published: `standardwebhooks`,
`slack-sdk`, `stripe`, `cloudevents`; elsewhere by its documentation, named at the row), linked,
its delivery id logged as the table says; and the table and these rows are the same.

Each sender posts its own JSON, `{"order": ..., "serial": ...}` where it puts its data, and a
`LINK_MAPPING` reads it, as it would be deployed.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests.auth
import slack_sdk.signature
import standardwebhooks.webhooks
import stripe
from cloudevents.conversion import to_binary, to_structured
from cloudevents.http import CloudEvent

from tests.helpers import ROOT, link_url, log_lines

LINK = "L1"
PAIR = {"order": "WO-1001", "serial": "SN-1"}
WHSEC = "whsec_" + base64.b64encode(b"a thirty-two byte signing secret").decode()


@dataclass(frozen=True)
class Request:
    body: bytes
    headers: dict[str, str]
    content_type: str = "application/json"


@dataclass(frozen=True)
class Sender:
    """A row: its settings, where its JSON puts the pair, how it makes a request (the body and
    the fake clock's now in, the request out), and the delivery id it carries."""

    settings: dict[str, str]
    where: str  # the JMESPath to the pair's object
    make: Callable[[dict[str, Any], int], Request]
    webhook_id: str | None
    rule: dict[str, Any] = field(default_factory=dict)  # more of the mapping rule (headers)


def _json(value: dict[str, Any]) -> bytes:
    return json.dumps(value).encode()


def github(body: dict[str, Any], now: int) -> Request:
    # GitHub signs the raw body with HMAC-SHA256, hex, "sha256=" (docs.github.com, "Validating
    # webhook deliveries"; no Python library of GitHub's signs).
    raw = _json(body)
    signature = hmac.new(b"gh-secret", raw, hashlib.sha256).hexdigest()
    return Request(raw, {"X-Hub-Signature-256": f"sha256={signature}",
                         "X-GitHub-Event": "push", "X-GitHub-Delivery": "72d3162e-cc78-11e3"})  # fmt: skip


def gitlab_token(body: dict[str, Any], now: int) -> Request:
    # GitLab sends its secret token as is (docs.gitlab.com, "Webhooks", custom headers).
    return Request(_json(body), {"X-Gitlab-Token": "gl-token", "X-Gitlab-Event": "Push Hook",
                                 "X-Gitlab-Event-UUID": "13792a34-cac6-4fda"})  # fmt: skip


def standard(body: dict[str, Any], now: int) -> Request:
    raw = _json(body)
    moment = datetime.datetime.fromtimestamp(now, datetime.UTC)
    signature = standardwebhooks.webhooks.Webhook(WHSEC).sign(
        "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", moment, raw
    )
    return Request(raw, {"webhook-id": "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", "webhook-timestamp": str(now),
                         "webhook-signature": signature})  # fmt: skip


def shopify(body: dict[str, Any], now: int) -> Request:
    # Shopify: base64 HMAC-SHA256 of the raw body (shopify.dev, "Verify webhooks").
    raw = _json(body)
    signature = base64.b64encode(hmac.digest(b"shopify-secret", raw, hashlib.sha256)).decode()
    return Request(raw, {"X-Shopify-Hmac-Sha256": signature, "X-Shopify-Topic": "orders/paid",
                         "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37"})  # fmt: skip


def jira(body: dict[str, Any], now: int) -> Request:
    # Atlassian: "sha256=<hex>" in X-Hub-Signature (developer.atlassian.com, "Webhooks", secure
    # admin webhooks).
    raw = _json(body)
    signature = hmac.new(b"jira-secret", raw, hashlib.sha256).hexdigest()
    return Request(raw, {"X-Hub-Signature": f"sha256={signature}",
                         "X-Atlassian-Webhook-Identifier": "2d5e8f1a-jira"})  # fmt: skip


def slack(body: dict[str, Any], now: int) -> Request:
    raw = _json({"type": "event_callback", "event_id": "Ev08MFMKH6", "event": body})
    verifier = slack_sdk.signature.SignatureVerifier("slack-signing-secret")
    signature = verifier.generate_signature(timestamp=str(now), body=raw)
    assert signature is not None
    return Request(raw, {"X-Slack-Request-Timestamp": str(now), "X-Slack-Signature": signature})


def stripe_event(body: dict[str, Any], now: int) -> Request:
    raw = _json({"id": "evt_1NG8Du2eZvKYlo2C", "object": "event",
                 "type": "checkout.session.completed", "data": {"object": body}})  # fmt: skip
    header = stripe.WebhookSignature.generate_signature_header(raw.decode(), WHSEC, now)
    return Request(raw, {"Stripe-Signature": header})


def basic(user: str, password: str) -> Callable[[dict[str, Any], int], Request]:
    def make(body: dict[str, Any], now: int) -> Request:
        authorization = requests.auth._basic_auth_str(user, password)
        return Request(_json(body), {"Authorization": authorization})

    return make


def event_mesh(body: dict[str, Any], now: int) -> Request:
    # SAP Event Mesh delivers CloudEvents in binary mode, with Basic auth.
    event = CloudEvent({"type": "sap.s4.beh.order.v1", "source": "/sap/s4", "id": "ce-1234"}, body)
    headers, raw = to_binary(event)
    authorization = requests.auth._basic_auth_str("mesh", "mesh-password")
    return Request(raw, {**headers, "Authorization": authorization})


def event_grid(body: dict[str, Any], now: int) -> Request:
    # Azure Event Grid, CloudEvents schema: structured mode, a delivery header with the token.
    event = CloudEvent({"type": "Acme.Order", "source": "/acme", "id": "eg-5678"}, body)
    headers, raw = to_structured(event)
    return Request(raw, {**headers, "X-Api-Key": "eg-token"}, headers["content-type"])


def power_automate(body: dict[str, Any], now: int) -> Request:
    return Request(_json(body), {"X-Api-Key": "flow-token"})


def html_form(body: dict[str, Any], now: int) -> Request:
    # A form, with its signature over the raw bytes (as any hmac-sha256 sender signs).
    raw = "&".join(f"{k}={v}" for k, v in body.items()).encode()
    signature = hmac.new(b"form-secret", raw, hashlib.sha256).hexdigest()
    return Request(raw, {"X-Hub-Signature-256": f"sha256={signature}"},
                   "application/x-www-form-urlencoded")  # fmt: skip


SENDERS = {
    "GitHub": Sender(
        {"WEBHOOK_AUTH": "hmac-sha256", "WEBHOOK_SECRET_VALUE": "gh-secret"},
        "@", github, "72d3162e-cc78-11e3", {"headers": {"X-GitHub-Event": "push"}},
    ),
    "GitLab (secret token)": Sender(
        {"WEBHOOK_AUTH": "token", "WEBHOOK_TOKEN_HEADER": "X-Gitlab-Token",
         "WEBHOOK_SECRET_VALUE": "gl-token"},
        "@", gitlab_token, "13792a34-cac6-4fda", {"headers": {"x-gitlab-event": ["Push Hook"]}},
    ),
    "GitLab (signing token)": Sender(
        {"WEBHOOK_AUTH": "standard-webhooks", "WEBHOOK_SECRET_VALUE": WHSEC},
        "@", standard, "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
    ),
    "Shopify": Sender(
        {"WEBHOOK_AUTH": "hmac-sha256", "WEBHOOK_SIGNATURE_HEADER": "X-Shopify-Hmac-Sha256",
         "WEBHOOK_SECRET_VALUE": "shopify-secret"},
        "@", shopify, "b54557e4-bdd9-4b37",
    ),
    "Jira Cloud": Sender(
        {"WEBHOOK_AUTH": "hmac-sha256", "WEBHOOK_SIGNATURE_HEADER": "X-Hub-Signature",
         "WEBHOOK_SECRET_VALUE": "jira-secret"},
        "@", jira, "2d5e8f1a-jira",
    ),
    "Standard Webhooks senders (Svix and others)": Sender(
        {"WEBHOOK_AUTH": "standard-webhooks", "WEBHOOK_SECRET_VALUE": WHSEC},
        "@", standard, "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
    ),
    "Slack Events API": Sender(
        {"WEBHOOK_AUTH": "slack", "WEBHOOK_SECRET_VALUE": "slack-signing-secret"},
        "event", slack, "Ev08MFMKH6",
    ),
    "Stripe": Sender(
        {"WEBHOOK_AUTH": "stripe", "WEBHOOK_SECRET_VALUE": WHSEC},
        "data.object", stripe_event, "evt_1NG8Du2eZvKYlo2C",
    ),
    "Azure DevOps service hooks": Sender(
        {"WEBHOOK_AUTH": "basic", "WEBHOOK_SECRET_VALUE": "devops:hook-password"},
        "@", basic("devops", "hook-password"), None,
    ),
    "ServiceNow outbound REST, SAP Integration Suite": Sender(
        {"WEBHOOK_AUTH": "basic", "WEBHOOK_SECRET_VALUE": "old:rotated-out\nsnow:s3cr3t"},
        "@", basic("snow", "s3cr3t"), None,
    ),
    "SAP Event Mesh webhooks": Sender(
        {"WEBHOOK_AUTH": "basic", "WEBHOOK_SECRET_VALUE": "mesh:mesh-password",
         "WEBHOOK_ALLOWED_ORIGINS": "mesh.example.hana.ondemand.com"},
        "@", event_mesh, "ce-1234", {"headers": {"ce-type": "sap.s4.beh.order.v1"}},
    ),
    "Azure Event Grid (CloudEvents schema)": Sender(
        {"WEBHOOK_AUTH": "token", "WEBHOOK_TOKEN_HEADER": "X-Api-Key",
         "WEBHOOK_SECRET_VALUE": "eg-token", "WEBHOOK_ALLOWED_ORIGINS": "eventgrid.azure.net"},
        "data", event_grid, "eg-5678",
    ),
    "Power Automate, n8n (a header you choose)": Sender(
        {"WEBHOOK_AUTH": "token", "WEBHOOK_TOKEN_HEADER": "X-Api-Key",
         "WEBHOOK_SECRET_VALUE": "flow-token"},
        "@", power_automate, None,
    ),
    "An HTML form (`application/x-www-form-urlencoded`)": Sender(
        {"WEBHOOK_AUTH": "hmac-sha256", "WEBHOOK_SECRET_VALUE": "form-secret"},
        "@", html_form, None,
    ),
}  # fmt: skip


def documented_senders() -> list[str]:
    text = (ROOT / "docs" / "senders.md").read_text()
    table = text[text.index("| sender | `WEBHOOK_AUTH` |") :].splitlines()[2:]
    return [row.split("|")[1].strip() for row in table if row.startswith("|")]


def test_the_table_is_these_rows():
    assert documented_senders() == list(SENDERS)


@pytest.mark.parametrize("name", SENDERS)
def test_a_sender_links_as_it_signs(name, client, tulip, env, clock, capsys):
    sender = SENDERS[name]
    where = "" if sender.where == "@" else f"{sender.where}."
    rule = {"tableLinkId": f"'{LINK}'", "leftRecord": f"{where}order",
            "rightRecord": f"{where}serial", **sender.rule}  # fmt: skip
    env.set(LINK_MAPPING=json.dumps(rule), **sender.settings)
    call = tulip.put(link_url(LINK), status=204)
    request = sender.make(dict(PAIR), int(clock.wall_now))
    response = client.post("/", data=request.body, headers=request.headers,
                           content_type=request.content_type)  # fmt: skip
    assert (response.status_code, response.json["status"]) == (200, "linked"), response.json
    assert json.loads(call.calls[0].request.body) == {
        "leftRecord": "WO-1001",
        "rightRecord": "SN-1",
    }
    [line] = log_lines(capsys.readouterr().out)
    assert line.get("webhookId") == sender.webhook_id


@pytest.mark.parametrize("name", SENDERS)
def test_a_sender_tampered_with_is_refused(name, client, env, clock):
    sender = SENDERS[name]
    env.set(LINK_MAPPING=json.dumps({"leftRecord": "order", "rightRecord": "serial"}),
            TULIP_TABLE_LINK_ID=LINK, **sender.settings)  # fmt: skip
    request = sender.make(dict(PAIR), int(clock.wall_now))
    if sender.settings["WEBHOOK_AUTH"] in ("token", "basic"):  # nothing signed: the credentials
        headers = {k: (v + "x" if k in ("Authorization", "X-Gitlab-Token", "X-Api-Key") else v)
                   for k, v in request.headers.items()}  # fmt: skip
        body = request.body
    else:
        headers, body = request.headers, request.body.replace(b"WO-1001", b"WO-1002")
    response = client.post("/", data=body, headers=headers, content_type=request.content_type)
    assert response.status_code == 401


def test_an_event_named_in_a_header_that_no_rule_takes_is_ignored(client, tulip, env, clock):
    env.set(LINK_MAPPING=json.dumps({"tableLinkId": f"'{LINK}'", "leftRecord": "order",
                                     "rightRecord": "serial",
                                     "headers": {"X-GitHub-Event": "push"}}),
            WEBHOOK_AUTH="hmac-sha256", WEBHOOK_SECRET_VALUE="gh-secret")  # fmt: skip
    request = github(dict(PAIR), int(clock.wall_now))
    request.headers["X-GitHub-Event"] = "issues"
    response = client.post("/", data=request.body, headers=request.headers,
                           content_type="application/json")  # fmt: skip
    assert (response.status_code, response.json["status"]) == (200, "ignored")


def test_slack_url_verification_is_answered_with_its_challenge_and_nothing_else(
    client, env, clock, capsys
):
    env.set(WEBHOOK_AUTH="slack", WEBHOOK_SECRET_VALUE="slack-signing-secret",
            WEBHOOK_DELIVERY="queue", WEBHOOK_QUEUE_TOPIC="projects/p/topics/link-requests",
            LINK_MAPPING=json.dumps({"leftRecord": "nope", "rightRecord": "nope"}),
            TULIP_TABLE_LINK_ID=LINK)  # fmt: skip
    raw = _json({"token": "Jhj5dZrVaK7ZwHHjRyZWjbDl", "type": "url_verification",
                 "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"})  # fmt: skip
    now = str(int(clock.wall_now))
    signature = slack_sdk.signature.SignatureVerifier("slack-signing-secret").generate_signature(
        timestamp=now, body=raw
    )
    assert signature is not None
    headers = {"X-Slack-Request-Timestamp": now, "X-Slack-Signature": signature}
    response = client.post("/", data=raw, headers=headers, content_type="application/json")
    assert response.status_code == 200
    assert response.json == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}
    [line] = log_lines(capsys.readouterr().out)
    assert line["event"] == "webhook.handshake"  # no mapping read, nothing queued
    unsigned = client.post("/", data=raw, content_type="application/json")
    assert unsigned.status_code == 401  # a challenge is answered only when signed


def test_stripe_takes_any_v1_while_a_secret_rolls(client, tulip, env, clock):
    env.set(WEBHOOK_AUTH="stripe", WEBHOOK_SECRET_VALUE=WHSEC, TULIP_TABLE_LINK_ID=LINK,
            LINK_MAPPING=json.dumps({"leftRecord": "data.object.order",
                                     "rightRecord": "data.object.serial"}))  # fmt: skip
    request = stripe_event(dict(PAIR), int(clock.wall_now))
    old = stripe.WebhookSignature._compute_signature("x", "whsec_old")
    request.headers["Stripe-Signature"] = request.headers["Stripe-Signature"].replace(
        ",v1=", f",v1={old},v1="
    )
    tulip.put(link_url(LINK), status=204)
    response = client.post("/", data=request.body, headers=request.headers,
                           content_type="application/json")  # fmt: skip
    assert response.status_code == 200


@pytest.mark.parametrize("mode", ["slack", "stripe"])
def test_an_old_timestamp_is_refused_before_the_body_is_read(mode, client, env, clock):
    make = slack if mode == "slack" else stripe_event
    env.set(
        WEBHOOK_AUTH=mode,
        WEBHOOK_SECRET_VALUE=WHSEC if mode == "stripe" else "slack-signing-secret",
    )
    request = make(dict(PAIR), int(clock.wall_now) - 301)
    response = client.post("/", data=request.body, headers=request.headers,
                           content_type="application/json")  # fmt: skip
    assert response.status_code == 401


def test_the_cloudevents_handshake_consents_for_an_allowed_origin_only(client, env, capsys):
    env.set(WEBHOOK_AUTH="basic", WEBHOOK_SECRET_VALUE="mesh:pw",
            WEBHOOK_ALLOWED_ORIGINS="mesh.example.com, eventgrid.azure.net")  # fmt: skip
    allowed = client.options("/", headers={"WebHook-Request-Origin": "eventgrid.azure.net",
                                           "WebHook-Request-Rate": "120"})  # fmt: skip
    assert allowed.status_code == 200
    assert allowed.headers["WebHook-Allowed-Origin"] == "eventgrid.azure.net"
    assert allowed.headers["WebHook-Allowed-Rate"] == "120"
    quiet = client.options("/", headers={"WebHook-Request-Origin": "mesh.example.com"})
    assert quiet.status_code == 200 and "WebHook-Allowed-Rate" not in quiet.headers
    refused = client.options("/", headers={"WebHook-Request-Origin": "evil.example"})
    assert (refused.status_code, refused.json["errorCode"]) == (403, "ORIGIN_NOT_ALLOWED")
    assert "WebHook-Allowed-Origin" not in refused.headers
    lines = log_lines(capsys.readouterr().out)
    assert "WEBHOOK_ALLOWED_ORIGINS" in lines[-1]["message"]
    plain = client.options("/")
    assert (plain.status_code, plain.headers["Allow"]) == (405, "POST")


@pytest.mark.parametrize(
    ("origin", "rate", "named"),
    [("", None, "WebHook-Request-Origin"), ("a host", None, "WebHook-Request-Origin"),
     ("x.example", "", "WebHook-Request-Rate"), ("x.example", "0", "WebHook-Request-Rate"),
     ("x.example", "fast", "WebHook-Request-Rate"), ("x.example", "-5", "WebHook-Request-Rate")],
)  # fmt: skip
def test_a_handshake_that_cannot_be_read_is_refused_naming_its_header(
    origin, rate, named, client, env
):
    env.set(WEBHOOK_AUTH="basic", WEBHOOK_SECRET_VALUE="a:b", WEBHOOK_ALLOWED_ORIGINS="*")
    headers = {"WebHook-Request-Origin": origin}
    if rate is not None:
        headers["WebHook-Request-Rate"] = rate
    answer = client.options("/", headers=headers)
    assert (answer.status_code, answer.json["errorCode"]) == (400, "MALFORMED_REQUEST")
    assert named in answer.json["message"]
    assert "WebHook-Allowed-Origin" not in answer.headers


def test_any_origin_with_a_star_and_none_by_default(client, env):
    env.set(WEBHOOK_AUTH="basic", WEBHOOK_SECRET_VALUE="a:b")
    assert client.options("/", headers={"WebHook-Request-Origin": "x.example"}).status_code == 403
    env.set(WEBHOOK_ALLOWED_ORIGINS="*")
    from function import instance

    instance.reset()
    allowed = client.options("/", headers={"WebHook-Request-Origin": "x.example"})
    assert allowed.headers["WebHook-Allowed-Origin"] == "x.example"


def test_a_form_without_a_mapping_uses_our_field_names_and_a_repeated_field_is_a_list(
    client, tulip, env
):
    body = f"tableLinkId={LINK}&leftRecord=WO-1001&rightRecord=SN-1"
    tulip.put(link_url(LINK), status=204)
    response = client.post("/", data=body, content_type="application/x-www-form-urlencoded")
    assert response.json["status"] == "linked"
    env.set(LINK_MAPPING=json.dumps({"tableLinkId": f"'{LINK}'", "leftRecord": "order",
                                     "rightRecord": "serial"}))  # fmt: skip
    from function import instance

    instance.reset()
    for _ in range(2):
        tulip.put(link_url(LINK), status=204)
    response = client.post("/", data="order=WO-1&serial=SN-1&serial=SN-2",
                           content_type="application/x-www-form-urlencoded")  # fmt: skip
    assert [r["rightRecord"] for r in response.json["results"]] == ["SN-1", "SN-2"]


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("WEBHOOK_ALLOWED_ORIGINS", "https://x.example/", "host names"),
        ("WEBHOOK_TOKEN_HEADER", "Bad Header", "header name"),
        ("WEBHOOK_TOKEN_HEADER", "X-Api-Key", "only with WEBHOOK_AUTH=token, not basic"),
    ],
)
def test_bad_sender_settings_are_named(client, env, setting, value, message):
    mode = "basic" if "basic" in message else "token"
    env.set(WEBHOOK_AUTH=mode, WEBHOOK_SECRET_VALUE="t:u", **{setting: value})
    response = client.post("/", json={})
    assert response.status_code == 500 and setting in response.json["message"]
    assert re.search(message, response.json["message"])
