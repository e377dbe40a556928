"""The attempt time limit: it ends the read in progress, and never touches a released socket."""

from __future__ import annotations

import socket

from function.clients.attempt_limit import Limit


class Connection:
    """What a limit needs of a connection: its socket."""

    limit = None

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock


def test_an_expired_limit_shuts_the_socket_in_use_down():
    ours, theirs = socket.socketpair()
    with ours, theirs:
        limit = Limit(30)
        limit.use(Connection(ours))  # type: ignore[arg-type]
        limit.expire()
        ours.settimeout(5)
        assert ours.recv(1) == b""  # a read in progress would end the same way, at once
        assert limit.expired


def test_a_connection_back_in_the_pool_is_out_of_reach():
    ours, theirs = socket.socketpair()
    with ours, theirs:
        connection = Connection(ours)
        limit = Limit(30)
        limit.use(connection)  # type: ignore[arg-type]
        limit.release(connection)  # type: ignore[arg-type]
        limit.expire()  # a moment too late: another request may hold the connection now
        theirs.sendall(b"x")
        ours.settimeout(5)
        assert ours.recv(1) == b"x"
