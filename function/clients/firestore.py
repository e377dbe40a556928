"""The deliveries a webhook function accepted, in Firestore (`DEDUP_DATABASE`): one document per
delivery, in the collection `deliveries`, named by the core's key.

A document: `state` (`claimed` while a request is accepting the delivery, `done` once it was
answered), `requestId` (that request's), `claimedAt`, `expiresAt` (the TTL field: Firestore
deletes the document some time after it), and once done `status` (what was answered) and
`messageIds`. `google-cloud-firestore` is imported only when a store is made, so a deployment
without deduplication never loads it. With `FIRESTORE_EMULATOR_HOST` set, the client talks to
that emulator, without credentials.

Every call is one attempt, bounded by the caller's timeout; any error of the API (unreachable,
denied, no such database, too slow) is `DedupUnavailable`, naming it.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from function.model.errors import ConfigError, DedupUnavailable

if TYPE_CHECKING:
    from google.cloud.firestore import Client, DocumentReference

COLLECTION = "deliveries"
DeliveryState = Literal["claimed", "done"]


@dataclass(frozen=True)
class Claim:
    """A request's claim on a delivery: its `requestId`, when, and until when it is remembered."""

    request_id: str
    claimed_at: float  # seconds since the epoch
    expires_at: float
    sender: str | None
    signed: bool  # the delivery id is covered by the sender's signature


@dataclass(frozen=True)
class Recorded:
    """What the store holds for a delivery."""

    state: DeliveryState
    request_id: str
    claimed_at: float
    expires_at: float


class DeliveryStore:
    """The `deliveries` of one Firestore database (`projects/P/databases/D`)."""

    def __init__(self, database: str) -> None:
        """`ConfigError` when no Google credentials are found (outside the cloud, and without
        `FIRESTORE_EMULATOR_HOST`)."""
        from google.auth.exceptions import GoogleAuthError
        from google.cloud import firestore  # only with deduplication on

        _, project, _, name = database.split("/")
        try:
            self._client: Client = firestore.Client(project=project, database=name)
        except GoogleAuthError as error:
            raise ConfigError(
                f"DEDUP_DATABASE is set, but Google's credentials are not ({type(error).__name__}):"
                " run with a service account, or set FIRESTORE_EMULATOR_HOST for local runs"
            ) from None
        self._transactional = firestore.transactional

    def close(self) -> None:
        """Close the client's channel."""
        self._client.close()  # type: ignore[no-untyped-call]

    def claim(self, key: str, claim: Claim, timeout: float) -> Recorded | None:
        """Create the delivery's document as `claim`, atomically: None when this call created
        it, else what was there."""
        from google.api_core.exceptions import AlreadyExists

        document = self._document(key)
        for _ in range(3):  # a document released between the two calls is anyone's again
            with _unavailable("claim"):
                try:
                    document.create(_fields(claim), retry=None, timeout=timeout)
                    return None
                except AlreadyExists:
                    found = document.get(retry=None, timeout=timeout).to_dict()
            if found is not None:
                return _recorded(found)
        raise DedupUnavailable("The delivery's record in DEDUP_DATABASE kept changing; send again")

    def take_over(self, key: str, previous: Recorded, claim: Claim, timeout: float) -> bool:
        """Replace `previous` (a claim abandoned, or a delivery no longer remembered) with
        `claim`, in a transaction; False when the document changed meanwhile."""

        def replace(transaction: Any, document: DocumentReference) -> bool:
            found = document.get(transaction=transaction, retry=None, timeout=timeout).to_dict()
            if found is None or _recorded(found) != previous:
                return False
            transaction.set(document, _fields(claim))
            return True

        with _unavailable("take over a claim"):
            replaced: bool = self._transactional(replace)(
                self._client.transaction(), self._document(key)
            )
        return replaced

    def finish(self, key: str, status: int, message_ids: list[str], timeout: float) -> None:
        """Mark the delivery done, with what the request that claimed it was answered."""
        fields = {"state": "done", "status": status, "messageIds": message_ids}
        with _unavailable("record the answer"):
            self._document(key).update(fields, retry=None, timeout=timeout)

    def release(self, key: str, claim: Claim, timeout: float) -> None:
        """Delete the delivery's document if it is still `claim`'s, so that a retry is accepted."""

        def delete(transaction: Any, document: DocumentReference) -> None:
            found = document.get(transaction=transaction, retry=None, timeout=timeout).to_dict()
            if found is not None and found.get("requestId") == claim.request_id:
                transaction.delete(document)

        with _unavailable("release a claim"):
            self._transactional(delete)(self._client.transaction(), self._document(key))

    def _document(self, key: str) -> DocumentReference:
        return self._client.collection(COLLECTION).document(key)


@contextmanager
def _unavailable(doing: str) -> Iterator[None]:
    """Any error of the API, as `DedupUnavailable`."""
    from google.api_core.exceptions import GoogleAPIError

    try:
        yield
    except GoogleAPIError as error:
        reason = type(error).__name__
        raise DedupUnavailable(
            f"Could not {doing} in DEDUP_DATABASE ({reason}); nothing was queued or linked: "
            "send the request again"
        ) from error


def _fields(claim: Claim) -> dict[str, Any]:
    return {
        "state": "claimed",
        "requestId": claim.request_id,
        "claimedAt": _moment(claim.claimed_at),
        "expiresAt": _moment(claim.expires_at),
        "sender": claim.sender,
        "signed": claim.signed,
    }


def _recorded(found: dict[str, Any]) -> Recorded:
    state: DeliveryState = "done" if found.get("state") == "done" else "claimed"
    return Recorded(
        state,
        str(found.get("requestId", "")),
        _seconds(found.get("claimedAt")),
        _seconds(found.get("expiresAt")),
    )


def _moment(seconds: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC)


def _seconds(moment: object) -> float:
    return moment.timestamp() if isinstance(moment, datetime.datetime) else 0.0
