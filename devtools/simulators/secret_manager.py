"""The Secret Manager simulator: AccessSecretVersion over plaintext gRPC on 127.0.0.1.

The function's real client reaches it through `SECRET_MANAGER_EMULATOR_HOST` (anonymous
credentials, no TLS). Used by the tests (scripted failures, the deadline each call carried) and by
`make bench` (counting the reads each variant makes). Not deployed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent import futures

import grpc
from google.cloud.secretmanager_v1.types import (
    AccessSecretVersionRequest,
    AccessSecretVersionResponse,
    SecretPayload,
)


class SecretManagerSimulator:
    """Secret Manager's AccessSecretVersion on 127.0.0.1 (`port` 0: one the kernel chooses), with
    scripted failures."""

    def __init__(self, port: int = 0) -> None:
        self.values: dict[str, bytes] = {}
        self.failures: list[grpc.StatusCode] = []  # returned, in order, before any value
        self.calls: list[str] = []
        self.deadlines: list[float | None] = []  # seconds the client allowed each call
        self.on_call: Callable[[], None] | None = None
        self._lock = threading.Lock()
        handler = grpc.method_handlers_generic_handler(
            "google.cloud.secretmanager.v1.SecretManagerService",
            {
                "AccessSecretVersion": grpc.unary_unary_rpc_method_handler(
                    self._access,
                    request_deserializer=AccessSecretVersionRequest.deserialize,
                    response_serializer=AccessSecretVersionResponse.serialize,
                )
            },
        )
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        self._server.add_generic_rpc_handlers((handler,))
        self.port = self._server.add_insecure_port(f"127.0.0.1:{port}")
        if self.port == 0:
            raise OSError(f"could not listen on 127.0.0.1:{port}")
        self._server.start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def put(self, name: str, value: str | bytes) -> None:
        """Make `name` (a full version name) hold `value`."""
        self.values[name] = value.encode() if isinstance(value, str) else value

    def stop(self) -> None:
        self._server.stop(grace=None)

    def _access(
        self, request: AccessSecretVersionRequest, context: grpc.ServicerContext
    ) -> AccessSecretVersionResponse:
        with self._lock:
            self.calls.append(request.name)
            self.deadlines.append(context.time_remaining())
            failure = self.failures.pop(0) if self.failures else None
        if self.on_call is not None:
            self.on_call()
        if failure is not None:
            context.abort(failure, "scripted failure")
        if request.name not in self.values:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Secret [{request.name}] not found")
        return AccessSecretVersionResponse(
            name=request.name, payload=SecretPayload(data=self.values[request.name])
        )
