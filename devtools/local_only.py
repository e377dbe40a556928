"""What a local server accepts, so that no web page the developer visits can drive it.

The console, the simulators' controls, the Pub/Sub simulator's state and the events function's
local front act without any secret: a browser is the only way in for a stranger, through a page
that posts a form to `127.0.0.1` or that rebinds its own name to `127.0.0.1` (DNS rebinding).
So every request must be addressed to the server by its loopback name and port (`Host`), and
every request that changes something must come from the server's own page or from no page at
all (a script, a test, `curl`): no `Origin` but the server's own, no `Sec-Fetch-Site` but
`same-origin` or `none`, and the content type the server expects, which a page of another site
cannot send without a CORS preflight that no local server answers.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "[::1]"})
READS = frozenset({"GET", "HEAD"})


class Headers(Protocol):
    """Request headers, case-insensitive, as `http.server` and werkzeug give them."""

    def get(self, name: str, /) -> str | None: ...


def refusal(
    method: str, headers: Headers, port: int, *, content_types: Collection[str] = ()
) -> str | None:
    """Why the server on `port` must refuse this request (None: it may serve it). A request that
    changes something (not GET or HEAD) must have one of `content_types`."""
    if headers.get("Host") not in {f"{name}:{port}" for name in LOOPBACK_NAMES}:
        return f"this server answers only to 127.0.0.1:{port} or localhost:{port} (the Host)"
    if method in READS:
        return None
    origin = headers.get("Origin")
    if origin is not None and origin not in {f"http://{name}:{port}" for name in LOOPBACK_NAMES}:
        return "a page of another site may not act here (the Origin)"
    if headers.get("Sec-Fetch-Site") not in (None, "same-origin", "none"):
        return "a page of another site may not act here (Sec-Fetch-Site)"
    media = (headers.get("Content-Type") or "").partition(";")[0].strip().lower()
    if media not in content_types:
        return f"send {' or '.join(content_types)}, not {media or 'no Content-Type'}"
    return None
