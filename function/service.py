"""The core: a request's JSON object in, its Tulip calls made, a `Result` out.

Free of Flask and CloudEvents: `handlers` unwraps HTTP bodies and Pub/Sub messages into the
plain JSON object this takes. One `LinkService` serves every request of a process (`instance`).

What a body asks for (`plan`):

- With `LINK_MAPPING` set, the body is read only through the mapping: no rule holds, and the
  event is `Ignored`; else its links, a batch when there are several or any fanned out.
- Without it, a body with `links` is a batch, and any other body one link. So is a body already
  in our shape (`in_our_shape`: a message queue mode's intake published), mapping or not.

Either way every link is validated (`links.validate_links`) before the first call, and the
token is read once per request. A single link returns its `LinkResult` or raises its
`Failure`; a batch returns a `Batch` holding every link's result, failed ones included. A dry
run makes no change: it checks the links as a batch and GETs each distinct table link once; a
table link Tulip describes as deleted fails its links (`TableLinkDeleted`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from . import logs
from .batch import RateGate, run_in_order
from .config import Settings
from .credentials import RequestToken, TulipCredentials
from .errors import Failure, NotAttempted, TableLinkDeleted
from .links import LinkRequest, Plan, read_links, validate_links
from .outcomes import LinkStatus
from .results import Batch, Ignored, LinkResult, Result
from .secret_manager import SecretCache, SecretManager
from .timing import SYSTEM_CLOCK, Backoff, Clock, Deadline
from .tulip import TulipClient

# What a batch does to one link, given the request's rate-limit gate.
_Work = Callable[[LinkRequest, RateGate], LinkResult]


class LinkService:
    """Everything one process shares between requests: settings, secret cache, Tulip's pool."""

    def __init__(self, settings: Settings, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.settings = settings
        self.clock = clock
        backoff = Backoff()
        manager = SecretManager(
            emulator_host=settings.secret_manager_emulator_host, clock=clock, backoff=backoff
        )
        self._secret_manager = manager
        self.secrets = SecretCache(manager.read, settings.secret_cache_ttl, clock)
        self.credentials = TulipCredentials(
            self.secrets, secret=settings.credentials_secret_version, token=settings.api_token()
        )
        self.tulip = TulipClient(
            base_url=settings.tulip_base_url,
            workspace_id=settings.workspace_id,
            timeout=settings.timeout,
            max_attempts=settings.max_attempts,
            clock=clock,
            backoff=backoff,
        )

    def close(self) -> None:
        """Close the Secret Manager client and Tulip's connection pool."""
        self._secret_manager.close()
        self.tulip.close()

    def deadline(self) -> Deadline:
        """A new request's deadline, counted from now."""
        return Deadline(self.clock, self.settings.deadline)

    def handle(
        self,
        data: Mapping[str, Any],
        deadline: Deadline,
        *,
        dry_run: bool = False,
        in_our_shape: bool = False,
    ) -> Result:
        """Validate `data` (the request's JSON object) and make the Tulip calls it asks for."""
        plan = self.plan(data, in_our_shape=in_our_shape)
        if isinstance(plan, Ignored):
            return plan
        token = RequestToken(self.credentials, deadline)
        if dry_run:
            return self._check(plan.links, token, deadline)
        if not plan.batch:
            [link] = plan.links
            logs.bind(**link.log_fields())
            return self._change(link, token, deadline, gate=None)

        def change(link: LinkRequest, gate: RateGate) -> LinkResult:
            return self._change(link, token, deadline, gate)

        return Batch(self._run(plan.links, change, deadline), dry_run=False)

    def plan(self, data: Mapping[str, Any], *, in_our_shape: bool = False) -> Plan | Ignored:
        """What `data` asks for, validated; `InvalidPayload` names every problem at once."""
        policy = self.settings.policy
        mapping = self.settings.link_mapping
        if mapping is None or in_our_shape:
            return read_links(data, policy)
        mapped = mapping.read(data)
        if isinstance(mapped, Ignored):
            return mapped
        links = validate_links(
            mapped.candidates, policy, counted_as="LINK_MAPPING", found=mapped.problems
        )
        return Plan(links, batch=len(links) > 1 or mapped.fanned_out)

    def _change(
        self, link: LinkRequest, token: RequestToken, deadline: Deadline, gate: RateGate | None
    ) -> LinkResult:
        accepted = self.tulip.change_link(
            table_link_id=link.link_id,
            action=link.action,
            left_record=link.left,
            right_record=link.right,
            tokens=token,
            deadline=deadline,
            on_rate_limited=None if gate is None else gate.close_for,
        )
        return _result(
            link,
            "linked" if link.action == "link" else "unlinked",
            tulip_status=accepted.status,
            attempts=accepted.attempts,
        )

    def _check(
        self, links: tuple[LinkRequest, ...], token: RequestToken, deadline: Deadline
    ) -> Batch:
        """A dry run: GET each distinct table link once; each link shares its link's answer."""

        def describe(link: LinkRequest, gate: RateGate) -> LinkResult:
            accepted = self.tulip.describe_link(
                table_link_id=link.link_id,
                tokens=token,
                deadline=deadline,
                on_rate_limited=gate.close_for,
            )
            if accepted.deleted_at is not None:  # 200, yet not a link a real run could use
                raise TableLinkDeleted(link.link_id, accepted.deleted_at, accepted.deleted_by)
            return _result(link, "valid", tables=accepted.tables)

        distinct = tuple({link.link_id: link for link in links}.values())
        described = {r.table_link_id: r for r in self._run(distinct, describe, deadline)}
        results = tuple(
            replace(
                described[link.link_id],
                left_record=link.left,
                right_record=link.right,
                action=link.action,
            )
            for link in links
        )
        return Batch(results, dry_run=True)

    def _run(
        self, links: tuple[LinkRequest, ...], work: _Work, deadline: Deadline
    ) -> tuple[LinkResult, ...]:
        """`work` on every link, in order, a few at once (`batch`), each failure kept."""
        gate = RateGate(self.clock)

        def one(index: int, link: LinkRequest) -> LinkResult:
            # Lines a link writes (retries) name it.
            with logs.scope(itemIndex=index, tableLinkId=link.link_id, action=link.action):
                try:
                    return work(link, gate)
                except Failure as failure:
                    return _result(link, "failed", failure=failure)

        def skip(index: int, link: LinkRequest) -> LinkResult:
            return _result(link, "not_attempted", failure=NotAttempted())

        return tuple(
            run_in_order(
                links,
                key=lambda link: link.pair,
                work=one,
                skip=skip,
                concurrency=self.settings.batch_concurrency,
                deadline=deadline,
                gate=gate,
            )
        )


def _result(link: LinkRequest, status: LinkStatus, **details: Any) -> LinkResult:
    return LinkResult(link.link_id, link.left, link.right, link.action, status, **details)
