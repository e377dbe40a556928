"""Plaintext gRPC channels to servers on this machine (`SECRET_MANAGER_EMULATOR_HOST`,
`PUBSUB_EMULATOR_HOST`): local runs and tests only.

Each channel keeps connections of its own. gRPC otherwise shares one connection between every
channel of a process that has the same target, and a channel to a server that has stopped leaves
that connection in reconnect backoff: a later server given the same port by the kernel would see
its first calls fail at once. Channels to Google keep the shared pool, which is right there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import grpc


def local_channel(host: str) -> grpc.Channel:
    """A plaintext channel to `host` (`host:port`) that shares no connection with another."""
    import grpc  # here, not above: only local runs pay for the import

    return grpc.insecure_channel(host, options=[("grpc.use_local_subchannel_pool", 1)])
