"""Constants and builders the tests share (fixtures are in conftest.py)."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

ROOT = Path(__file__).resolve().parent.parent
OPENAPI: dict[str, Any] = yaml.safe_load((ROOT / "openapi.yaml").read_text())
BASE_URL = "https://acme.tulip.co"
API_KEY = "apikey.2_TESTKEYx7Qz"
API_SECRET = "s3cret-Vq9ZLwRtYp0"
LINK_ID = "g56RCoZCtzv7borvp"


def link_url(link_id: str = LINK_ID, action: str = "link", base: str = BASE_URL) -> str:
    return f"{base}/api/v3/tableLinks/{link_id}/{action}"


def request_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"tableLinkId": LINK_ID, "leftRecord": "WO-1001", "rightRecord": "SN-1"}
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not ...}


def b64(payload: Any) -> str:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return base64.b64encode(raw).decode()


def push_envelope(payload: Any, message_id: str = "msg-1", attempt: int = 1) -> dict[str, Any]:
    return {
        "message": {
            "data": b64(payload),
            "attributes": {"source": "mes"},
            "messageId": message_id,
            "publishTime": "2026-11-27T05:00:00Z",
        },
        "subscription": "projects/p/subscriptions/tulip-link-events",
        "deliveryAttempt": attempt,
    }


def log_lines(text: str) -> list[dict[str, Any]]:
    """Every stdout line as JSON (a line that is not JSON fails the test), but for an
    instance's one-time warnings about its settings (`settings.warning`, tested apart)."""
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    return [line for line in lines if line.get("event") != "settings.warning"]


def schema(name: str) -> jsonschema.Draft202012Validator:
    """A validator for one of openapi.yaml's schemas, its references resolved."""
    registry = Registry().with_resource(
        "urn:spec", Resource.from_contents(OPENAPI, default_specification=DRAFT202012)
    )
    return jsonschema.Draft202012Validator(
        {"$ref": f"urn:spec#/components/schemas/{name}"}, registry=registry
    )


def anchors(page: Path) -> set[str]:
    """The anchors GitHub makes of a page's headings."""
    found = set()
    for heading in re.findall(r"^#+ (.+)$", page.read_text(), flags=re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        found.add(slug)
    return found
