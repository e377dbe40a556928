"""Each delivery applied once (`DEDUP_DATABASE`): a sender's delivery id, remembered, so that a
retry or a replay of a delivery changes nothing.

`Deliveries.once` runs what a request asks for (queue its links, or make them) once per
delivery id, after the request was authenticated and validated:

- the first time, the delivery is claimed (a create that fails if its record exists), acted on,
  then marked done with what was answered;
- seen and done: `Duplicate`, with the first request's `requestId`; nothing is acted on;
- seen but not done, another request accepting it right now: `QueueUnavailable` (503 with
  `Retry-After`), so that the sender comes back and then gets `Duplicate`. A claim older than
  the request deadline was left by an instance that died, and is taken over;
- remembered for `window` seconds: a record past it is a new delivery (Firestore's TTL deletes
  records some time after, not at once);
- the act failed (a `Failure`, or a batch with a failed link): the claim is released, so that
  the sender's retry is accepted.

A record is keyed by the sender and the id, hashed (SHA-256), so two senders' ids never meet and
any id fits Firestore's document names. Whether the id is signed is recorded with it: an id the
signature covers stops replays too, an unsigned one only honest retries (docs/senders.md).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from function import logs
from function.clients.firestore import Claim, DeliveryStore
from function.model.delivery import DeliveryId
from function.model.errors import DedupUnavailable, Failure, QueueUnavailable
from function.model.results import Batch, Duplicate, LinkResult, Result, failed
from function.model.status_table import RULES
from function.timing import Clock, Deadline

# The most one call to the store may take (less when the request's deadline is nearer).
STORE_CALL_SECONDS = 5.0


class Deliveries:
    """Remembers the deliveries one sender's webhook accepted, in `store`."""

    def __init__(
        self,
        store: DeliveryStore,
        *,
        window: float,
        stale_after: float,
        sender: str | None,
        clock: Clock,
    ) -> None:
        self._store = store
        self._window = window
        self._stale_after = stale_after
        self._sender = sender
        self._clock = clock

    def close(self) -> None:
        """Close the store's client."""
        self._store.close()

    def key(self, delivery: DeliveryId) -> str:
        """The record's name: the sender and the delivery id, hashed."""
        return hashlib.sha256(f"{self._sender or ''}\n{delivery.value}".encode()).hexdigest()

    def once(
        self,
        delivery: DeliveryId,
        request_id: str,
        deadline: Deadline,
        act: Callable[[], Result],
    ) -> Result:
        """`act()`'s result, the first time `delivery` comes; `Duplicate` after it was done."""
        key = self.key(delivery)
        now = self._clock.wall()
        claim = Claim(request_id, now, now + self._window, self._sender, delivery.signed)
        seen = self._store.claim(key, claim, _timeout(deadline))
        if seen is not None:
            expired = seen.expires_at <= now
            abandoned = seen.state == "claimed" and now - seen.claimed_at > self._stale_after
            if not (expired or abandoned):
                if seen.state == "done":
                    return Duplicate(seen.request_id)
                raise QueueUnavailable(
                    "This delivery is being accepted by another request right now; send it "
                    "again in a moment (it will then be answered as a duplicate)"
                )
            if not self._store.take_over(key, seen, claim, _timeout(deadline)):
                raise QueueUnavailable(
                    "This delivery was claimed by another request just now; send it again"
                )
        try:
            result = act()
        except Failure:
            self._release(key, claim, deadline)
            raise
        if failed(result):
            self._release(key, claim, deadline)
            return result
        status = RULES[result.outcome].status
        try:
            self._store.finish(key, status or 200, _message_ids(result), _timeout(deadline))
        except DedupUnavailable as error:
            # Done, yet not remembered as done: a retry within the request deadline is told to
            # come back, a later one is accepted again (a link made twice ends as once).
            logs.emit("WARNING", "dedup.warning", f"Accepted, but not recorded as done: {error}")
        return result

    def _release(self, key: str, claim: Claim, deadline: Deadline) -> None:
        """Forget the claim, so that the sender's retry is accepted; a store that fails here
        leaves it to be taken over once abandoned (the failure answered is the act's)."""
        try:
            self._store.release(key, claim, _timeout(deadline))
        except DedupUnavailable as error:
            logs.emit("WARNING", "dedup.warning", f"Could not release the claim: {error}")


def _timeout(deadline: Deadline) -> float:
    return max(0.1, min(STORE_CALL_SECONDS, deadline.remaining()))


def _message_ids(result: Result) -> list[str]:
    if isinstance(result, LinkResult):
        return [result.message_id] if result.message_id else []
    if isinstance(result, Batch):
        return [r.message_id for r in result.results if r.message_id]
    return []
