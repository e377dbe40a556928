"""Publishing to Pub/Sub: the queue-mode intake's one upstream call.

`Publisher.publish` sends messages in order per ordering key and gives up on what Pub/Sub has not
confirmed within the time it is given: no call outlives it. One per process, created on first use
(direct mode never imports the library). Why it retries itself: docs/design.md.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from function.clients.local_grpc import local_channel
from function.model.errors import QueueUnavailable

# What is tried again while time is left; anything else fails the message at once.
_RETRYABLE = ("Aborted", "DeadlineExceeded", "InternalServerError", "ServiceUnavailable", "Unknown")
_FIRST_WAIT_SECONDS = 0.05
_LONGEST_WAIT_SECONDS = 0.5


@dataclass(frozen=True)
class Message:
    """One message to publish: its data, attributes and ordering key."""

    data: bytes
    attributes: Mapping[str, str]
    ordering_key: str


@dataclass(frozen=True)
class Published:
    """What became of one message: its id once Pub/Sub confirmed it, else why not."""

    message_id: str | None
    error: str | None = None


class Publisher:
    """Publishes to `topic` (`projects/P/topics/T`)."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self._client: Any = None
        self._lock = threading.Lock()
        self._in_flight: set[concurrent.futures.Future[str]] = set()
        self._longest_timeout = 0.0

    def publish(self, messages: Sequence[Message], timeout: float) -> list[Published]:
        """Publish every message, in order per ordering key; give up on what Pub/Sub has not
        confirmed within `timeout` seconds. `QueueUnavailable` when no message could even be
        sent (no credentials)."""
        from google.api_core import exceptions

        client = self._get_client()
        with self._lock:
            self._longest_timeout = max(self._longest_timeout, timeout)
        retryable = tuple(getattr(exceptions, name) for name in _RETRYABLE)
        deadline = time.monotonic() + timeout
        outcomes: dict[int, Published] = {}
        waiting = list(range(len(messages)))
        wait = _FIRST_WAIT_SECONDS
        late = f"Pub/Sub did not confirm it within {timeout:g} s"
        while True:
            left = deadline - time.monotonic()
            sent = {i: self._send(client, messages[i], left) for i in waiting}
            concurrent.futures.wait(sent.values(), timeout=left)
            waiting, refused_keys = [], set()
            for i, future in sent.items():  # in order: a key's earlier message comes first
                key = messages[i].ordering_key
                error = future.exception() if future.done() else None
                if not future.done():
                    outcomes[i] = Published(None, late)
                elif error is None:
                    outcomes[i] = Published(future.result())
                # Not an API error: the client held it back, behind an earlier failure of its key.
                elif isinstance(error, retryable) or (
                    not isinstance(error, exceptions.GoogleAPIError) and key not in refused_keys
                ):
                    waiting.append(i)
                    outcomes[i] = Published(None, f"{late} (the last try: {_describe(error)})")
                else:
                    refused_keys.add(key)
                    outcomes[i] = Published(None, f"Pub/Sub refused it ({_describe(error)})")
            if not waiting or time.monotonic() + wait >= deadline:
                return [outcomes[i] for i in range(len(messages))]
            time.sleep(wait)
            wait = min(wait * 2, _LONGEST_WAIT_SECONDS)

    def close(self) -> None:
        """Close the client's connections, if it was created, once every call still on the wire
        has ended (each within its deadline): it would fail on a closed channel."""
        with self._lock:
            client, self._client = self._client, None
            in_flight, longest = list(self._in_flight), self._longest_timeout
        if client is not None:
            concurrent.futures.wait(in_flight, timeout=longest)
            client.transport.close()

    def _send(self, client: Any, message: Message, left: float) -> concurrent.futures.Future[str]:
        """One try: a call whose deadline is the time `left`, the library's retry off."""
        from google.api_core import exceptions

        with contextlib.suppress(RuntimeError):  # raised when the key is not paused
            client.resume_publish(self.topic, message.ordering_key)  # by an earlier failure
        try:
            future: concurrent.futures.Future[str] = client.publish(
                self.topic,
                message.data,
                ordering_key=message.ordering_key,
                retry=None,
                timeout=max(left, 0.001),
                **message.attributes,
            )
        except exceptions.GoogleAPIError as error:
            future = concurrent.futures.Future()
            future.set_exception(error)
        with self._lock:
            self._in_flight.add(future)
        future.add_done_callback(self._settled)
        return future

    def _settled(self, future: concurrent.futures.Future[str]) -> None:
        with self._lock:
            self._in_flight.discard(future)

    def _get_client(self) -> Any:
        with self._lock:
            if self._client is None:
                from google.auth import exceptions as auth
                from google.cloud.pubsub_v1 import PublisherClient, types

                options = types.PublisherOptions(enable_message_ordering=True)
                # Send each message at once: a request waits for its few links' confirmations,
                # so batching would only add its wait to every answer (10 ms by default; with
                # ordering keys the client sends a batch when that time is up, full or not).
                batching = types.BatchSettings(max_latency=0)
                try:
                    self._client = PublisherClient(
                        batching, publisher_options=options, **_emulator_transport()
                    )
                except auth.DefaultCredentialsError:
                    raise QueueUnavailable(
                        "No Google credentials to publish with (Application Default Credentials "
                        "are missing)"
                    ) from None
            return self._client


def _emulator_transport() -> dict[str, Any]:
    """With `PUBSUB_EMULATOR_HOST`, a transport on a channel of its own (`local_grpc`); the
    library's own would share its connections with every other client of the process."""
    host = os.environ.get("PUBSUB_EMULATOR_HOST")
    if not host:
        return {}
    from google.auth.credentials import AnonymousCredentials
    from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport

    channel = local_channel(host)
    return {
        "transport": PublisherGrpcTransport(channel=channel, credentials=AnonymousCredentials())
    }


def _describe(error: BaseException) -> str:
    detail = str(error).splitlines()[0][:300] if str(error) else "no detail"
    return f"{type(error).__name__}: {detail}"
