"""Whatever happens, no answer and no output line holds a credential in any form."""

from __future__ import annotations

import base64
import json

from function import instance
from tests.helpers import link_url, push_envelope, request_body

VERSION = "projects/p/secrets/tulip/versions/latest"
KEY, SECRET = "apikey.2_LEAKCHECK9", "leak-check-secret-8841"
HEADER = base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()
FORMS = (KEY, SECRET, HEADER, f"Basic {HEADER}")


def test_no_credential_in_any_answer_or_output(
    env, client, push_client, event_client, tulip, secret_manager, capfd
):
    env.set(
        TULIP_API_KEY=None,
        TULIP_API_SECRET=None,
        TULIP_CREDENTIALS_SECRET=VERSION,
        SECRET_MANAGER_EMULATOR_HOST=secret_manager.host,
    )
    secret_manager.put(VERSION, json.dumps({"apiKey": KEY, "apiSecret": SECRET}))
    echo = {"errorCode": "E", "details": f"bad {KEY} / {SECRET} / Basic {HEADER}"}
    bodies = []

    tulip.put(link_url(), status=204)
    bodies.append(client.post("/", json=request_body()))
    for status in (401, 401, 403, 422, 500, 500, 500, 500):
        tulip.put(link_url(), status=status, json=echo)
    bodies.append(client.post("/", json=request_body()))  # 401, refresh, 401
    bodies.append(client.post("/", json=request_body()))  # 403
    bodies.append(push_client.post("/", json=push_envelope(request_body())))  # 422
    bodies.append(client.post("/", json=request_body()))  # 500 x4
    bodies.append(client.post("/", json={"leftRecord": SECRET}))  # 422 from us: no value echoed
    secret_manager.put(VERSION, f"{KEY} {SECRET}")  # not a token format
    instance.current().clients().secrets.invalidate(VERSION, lambda value: True)
    bodies.append(client.post("/", json=request_body()))  # MISCONFIGURED

    out, err = capfd.readouterr()
    answers = "\n".join(r.get_data(as_text=True) + str(r.headers) for r in bodies)
    assert [r.status_code for r in bodies] == [200, 502, 502, 422, 502, 422, 500]
    for form in FORMS:
        assert form not in out and form not in err
    for form in FORMS:
        assert form not in answers
