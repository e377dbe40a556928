"""Concurrent requests, as gen2 serves them: many threads, one process, shared state."""

from __future__ import annotations

import threading

from tests.doubles import Scripted

VERSION = "projects/p/secrets/tulip/versions/latest"


def test_concurrent_requests_share_one_token_read_and_get_their_own_answers(
    env, client, secret_manager, tulip_server
):
    threads_count = 16
    env.set(
        TULIP_BASE_URL=tulip_server.url,
        TULIP_API_KEY=None,
        TULIP_API_SECRET=None,
        TULIP_CREDENTIALS_SECRET=VERSION,
        SECRET_MANAGER_EMULATOR_HOST=secret_manager.host,
    )
    secret_manager.put(VERSION, "apikey.2_CONC:conc-secret")
    barrier = threading.Barrier(threads_count, timeout=10)

    def respond(recorded):
        barrier.wait()  # all requests reach Tulip before any is answered
        if recorded.json()["leftRecord"].endswith("7"):
            return Scripted(422, {"Content-Type": "application/json"}, b'{"errorCode":"NO"}')
        return Scripted(204)

    tulip_server.respond = respond
    answers: dict[int, tuple[int, dict]] = {}

    def send(n: int) -> None:
        own = client.application.test_client()
        body = {"tableLinkId": "Link_1", "leftRecord": f"WO-{n}", "rightRecord": f"SN-{n}"}
        response = own.post("/", json=body)
        answers[n] = (response.status_code, response.json)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert len(answers) == threads_count
    for n, (status, body) in answers.items():
        if n % 10 == 7:
            assert status == 422 and body["tulipErrorCode"] == "NO"
        else:
            assert status == 200 and body["leftRecord"] == f"WO-{n}"
            assert body["rightRecord"] == f"SN-{n}"
    assert secret_manager.calls == [VERSION]  # one read served every thread
    assert len(tulip_server.requests) == threads_count
    request_ids = {body["requestId"] for _, body in answers.values()}
    assert len(request_ids) == threads_count
