"""What a request achieved: plain data the core returns and the edge answers.

`LinkResult` (one link: done, valid, queued, failed, not attempted), `Ignored` (no mapping rule
applied), `Batch` (every link's result; one with failures answers as its worst link would
alone), `Handshake` (a sender's handshake, answered), `Duplicate` (a delivery accepted before),
`DeadLettered` (a message the events function put in the dead letters). A single link's failure
is not a result: it is the `Failure` raised where it happened.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal, get_args

from function.model.errors import Failure
from function.model.link import Link
from function.model.status_table import DEFAULT_RETRY_AFTER_SECONDS, RULES, Outcome, Rule

# What became of one link: done (linked, unlinked), checked (valid), queued for the events
# function (queue mode), or not.
LinkStatus = Literal["linked", "unlinked", "valid", "queued", "failed", "not_attempted"]
LINK_STATUSES: tuple[LinkStatus, ...] = get_args(LinkStatus)

# A link that succeeded, by its status: its row of the table.
_SUCCESS = {"valid": Outcome.VALID, "queued": Outcome.QUEUED}


@dataclass(frozen=True)
class LinkResult:
    """What became of one link.

    `tulip_status` and `attempts` describe Tulip's accepting answer; a failure carries its own.
    `tables` are the link's left and right table ids, as a dry run's GET found them;
    `message_id` the Pub/Sub message that carries a queued link.
    """

    link: Link
    status: LinkStatus
    failure: Failure | None = None
    tulip_status: int | None = None
    attempts: int | None = None
    tables: Mapping[str, str] = field(default_factory=dict)
    message_id: str | None = None

    @property
    def outcome(self) -> Outcome:
        """This link's row of the table."""
        if self.failure is not None:
            return self.failure.outcome
        return _SUCCESS.get(self.status, Outcome.DONE)


@dataclass(frozen=True)
class Ignored:
    """No mapping rule's `when` held: nothing to link, and nothing wrong."""

    when: tuple[str, ...]

    @property
    def outcome(self) -> Outcome:
        """Always `IGNORED`."""
        return Outcome.IGNORED


@dataclass(frozen=True)
class Batch:
    """Every link of a batch (or of a dry run), in the order given.

    When any link did not succeed, the batch answers as its worst link would have alone: a
    retryable link (one whose outcome is not permanent) beats a permanent one, and among equals
    the first in order wins. A sender then retries the whole batch (the pairs already done are
    done again, in the same order, ending as before), and never gets a 2xx while a link failed.
    Where that answer sends `Retry-After`, it is the longest any retryable link asks for.

    `tulip_checked` is False for a dry run that could not ask Tulip (a webhook function in queue
    mode may not read the Tulip token): everything else was checked.
    """

    results: tuple[LinkResult, ...]
    dry_run: bool
    tulip_checked: bool = True

    @cached_property
    def failures(self) -> tuple[tuple[int, Failure], ...]:
        """Each link that did not succeed, with its index."""
        return tuple((i, r.failure) for i, r in enumerate(self.results) if r.failure is not None)

    @property
    def worst(self) -> tuple[int, Failure] | None:
        """The link whose failure decides the answer, with its index; None when all succeeded."""
        retryable = [(i, f) for i, f in self.failures if not f.rule.permanent]
        found = retryable or self.failures
        return found[0] if found else None

    @property
    def outcome(self) -> Outcome:
        """When every link succeeded, `VALID` (a dry run), `QUEUED` (queue mode) or `DONE`; else
        the worst link's."""
        worst = self.worst
        if worst is not None:
            return worst[1].outcome
        if self.dry_run:
            return Outcome.VALID
        queued = all(result.status == "queued" for result in self.results)
        return Outcome.QUEUED if queued else Outcome.DONE

    @property
    def rule(self) -> Rule:
        """The batch's row of the table."""
        return RULES[self.outcome]

    def retry_after_seconds(self) -> float:
        """The longest wait any retryable link asks for."""
        waits = [
            f.retry_after_seconds()
            for _, f in self.failures
            if not f.rule.permanent and f.rule.retry_after
        ]
        return max(waits, default=DEFAULT_RETRY_AFTER_SECONDS)

    def summary(self) -> str:
        """One sentence for a failed batch's answer and log line."""
        worst = self.worst
        assert worst is not None, "only a failed batch is summarised"
        index, failure = worst
        return (
            f"{len(self.failures)} of {len(self.results)} links did not succeed; the answer is "
            f"that of results[{index}]: {failure.message}"
        )


@dataclass(frozen=True)
class Handshake:
    """A sender's handshake, answered: Slack's `url_verification` (`challenge`, echoed), or the
    CloudEvents validation (`origin` allowed to deliver, at `rate` if it asked for one)."""

    challenge: str | None = None
    origin: str | None = None
    rate: str | None = None

    @property
    def outcome(self) -> Outcome:
        """Always `HANDSHAKE`."""
        return Outcome.HANDSHAKE


@dataclass(frozen=True)
class Duplicate:
    """A delivery accepted before: nothing was queued or linked again. `first_request_id` is the
    `requestId` of the request that accepted it."""

    first_request_id: str

    @property
    def outcome(self) -> Outcome:
        """Always `DUPLICATE`."""
        return Outcome.DUPLICATE


@dataclass(frozen=True)
class DeadLettered:
    """The events function: a message that needs a person is in the dead-letter topic, with its
    reason; Pub/Sub confirmed it as `message_id`. `refusal` is what the message came to."""

    refusal: Failure | Batch
    message_id: str

    @property
    def outcome(self) -> Outcome:
        """Always `DEAD_LETTERED`."""
        return Outcome.DEAD_LETTERED


Result = LinkResult | Ignored | Batch | Handshake | Duplicate | DeadLettered


def failed(outcome: Result | Failure) -> bool:
    """Whether a request that came to `outcome` left anything it asked for undone."""
    return isinstance(outcome, Failure) or (
        isinstance(outcome, Batch) and outcome.worst is not None
    )
