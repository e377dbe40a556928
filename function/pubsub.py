"""Publishing to Pub/Sub: the queue-mode intake's one upstream call.

One `Publisher` per process (Google's advice for functions: the client is built once and
shared), created on first use so that direct mode never imports the library (about half a second
of a cold start). Messages carry an ordering key; the client publishes those of one key in order
and, after a failure, pauses the key until it is resumed, which happens here as soon as a publish
fails (even one that fails after we stopped waiting), so one outage does not block a pair for
ever.

`publish` waits for every confirmation at most the time it is given, all messages together: a
message not confirmed by then is reported as such (it may still be published later, which is why
a caller that retries must be able to link twice). The client's own retry is bounded by the same
time, so nothing keeps retrying long after the answer. `PUBSUB_EMULATOR_HOST` makes the client
talk plaintext gRPC to a local Pub/Sub with no credentials, as the library always does.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import QueueUnavailable

# What the client's retry treats as passing; anything else fails the publish at once.
_RETRYABLE = ("Aborted", "DeadlineExceeded", "InternalServerError", "ServiceUnavailable", "Unknown")


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
    """Publishes to one topic (`projects/P/topics/T`)."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self._client: Any = None
        self._lock = threading.Lock()

    def publish(self, messages: Sequence[Message], timeout: float) -> list[Published]:
        """Publish every message; wait at most `timeout` seconds for all their confirmations.
        `QueueUnavailable` when no message could even be sent (no credentials)."""
        from google.api_core import exceptions, retry

        client = self._get_client()
        bounded = retry.Retry(
            predicate=retry.if_exception_type(*(getattr(exceptions, n) for n in _RETRYABLE)),
            initial=0.05,
            maximum=0.5,
            timeout=timeout,
        )
        pending: list[concurrent.futures.Future[str]] = []
        for message in messages:
            try:
                future = client.publish(
                    self.topic,
                    message.data,
                    ordering_key=message.ordering_key,
                    retry=bounded,
                    timeout=timeout,
                    **message.attributes,
                )
            except exceptions.GoogleAPIError as error:  # e.g. its ordering key is paused
                future = concurrent.futures.Future()
                future.set_exception(error)
            future.add_done_callback(self._resume_after_failure(message.ordering_key))
            pending.append(future)
        concurrent.futures.wait(pending, timeout=timeout)
        return [_outcome(future, timeout) for future in pending]

    def _resume_after_failure(self, key: str) -> Any:
        def resume(future: concurrent.futures.Future[str]) -> None:
            if future.exception() is not None:
                self._get_client().resume_publish(self.topic, key)

        return resume

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
                    self._client = PublisherClient(batching, publisher_options=options)
                except auth.DefaultCredentialsError:
                    raise QueueUnavailable(
                        "No Google credentials to publish with (Application Default Credentials "
                        "are missing)"
                    ) from None
            return self._client


def _outcome(future: concurrent.futures.Future[str], timeout: float) -> Published:
    if not future.done():
        return Published(None, f"Pub/Sub did not confirm it within {timeout:g} s")
    error = future.exception()
    if error is None:
        return Published(future.result())
    return Published(None, f"Pub/Sub refused it ({type(error).__name__}: {_first_line(error)})")


def _first_line(error: BaseException) -> str:
    return str(error).splitlines()[0][:300] if str(error) else "no detail"
