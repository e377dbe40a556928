"""The core: a request's JSON object in, its Tulip calls made, a `Result` out.

`plan` reads what a body asks for (through `LINK_MAPPING` when there is one, unless the body is an
intake message, already in our shape) and validates every link before the first call. A single
link returns its `LinkResult` or raises its `Failure`; a batch returns a `Batch` holding every
link's result; a dry run changes nothing and GETs each distinct table link once. Without a Tulip
token (a webhook function in queue mode, which only queues: `infra/` gives it none unless the
sender's dry runs may ask Tulip) a dry run checks everything but Tulip, and says so.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from function import logs
from function.clients.credentials import RequestToken, TulipCredentials
from function.clients.tulip import TulipClient
from function.core.batch import RateGate, run_in_order
from function.core.links import LinkPolicy, Plan, read_links, validate_links
from function.core.mapping import LinkMapping
from function.model.errors import Failure, NotAttempted, TableLinkDeleted
from function.model.link import Link
from function.model.results import Batch, Ignored, LinkResult, LinkStatus, Result
from function.timing import Clock, Deadline

# What a batch does to one link, given the request's rate-limit gate.
_Work = Callable[[Link, RateGate], LinkResult]


class LinkService:
    """Links, unlinks and checks what requests ask for, with the clients it is given."""

    def __init__(
        self,
        *,
        policy: LinkPolicy,
        mapping: LinkMapping | None,
        credentials: TulipCredentials | None,  # None: no token; its dry runs do not ask Tulip
        tulip: TulipClient,
        batch_concurrency: int,
        clock: Clock,
    ) -> None:
        self._policy = policy
        self._mapping = mapping
        self._credentials = credentials
        self._tulip = tulip
        self._batch_concurrency = batch_concurrency
        self._clock = clock

    def close(self) -> None:
        """Close Tulip's connection pool."""
        self._tulip.close()

    def handle(
        self,
        data: Mapping[str, Any],
        deadline: Deadline,
        *,
        dry_run: bool = False,
        from_intake: bool = False,
    ) -> Result:
        """Validate `data` (the request's JSON object) and make the Tulip calls it asks for;
        `from_intake`: `data` is an intake message, in our own shape."""
        plan = self.plan(data, from_intake=from_intake)
        if isinstance(plan, Ignored):
            return plan
        return self.act(plan, deadline, dry_run=dry_run)

    def act(self, plan: Plan, deadline: Deadline, *, dry_run: bool = False) -> Result:
        """Make the Tulip calls `plan` (validated) asks for; a dry run GETs its table links."""
        if self._credentials is None and dry_run:
            checked = tuple(LinkResult(link, "valid") for link in plan.links)
            return Batch(checked, dry_run=True, tulip_checked=False)
        assert self._credentials is not None, "only a queue-mode webhook has none: it links nothing"
        token = RequestToken(self._credentials, deadline)
        if dry_run:
            return self._check(plan.links, token, deadline)
        if not plan.batch:
            [link] = plan.links
            logs.bind(**link.as_json())
            return self._change(link, token, deadline, gate=None)

        def change(link: Link, gate: RateGate) -> LinkResult:
            return self._change(link, token, deadline, gate)

        return Batch(self._run(plan.links, change, deadline), dry_run=False)

    def plan(
        self,
        data: Mapping[str, Any],
        *,
        from_intake: bool = False,
        headers: Mapping[str, str] | None = None,
    ) -> Plan | Ignored:
        """What `data` asks for, validated; `InvalidPayload` names every problem at once."""
        if self._mapping is None or from_intake:
            return read_links(data, self._policy)
        mapped = self._mapping.read(data, headers or {})
        if isinstance(mapped, Ignored):
            return mapped
        links = validate_links(
            mapped.candidates, self._policy, counted_as="LINK_MAPPING", found=mapped.problems
        )
        return Plan(links, batch=len(links) > 1 or mapped.fanned_out)

    def _change(
        self, link: Link, token: RequestToken, deadline: Deadline, gate: RateGate | None
    ) -> LinkResult:
        accepted = self._tulip.change_link(
            link,
            tokens=token,
            deadline=deadline,
            on_rate_limited=None if gate is None else gate.close_for,
        )
        status: LinkStatus = "linked" if link.action == "link" else "unlinked"
        return LinkResult(link, status, tulip_status=accepted.status, attempts=accepted.attempts)

    def _check(self, links: tuple[Link, ...], token: RequestToken, deadline: Deadline) -> Batch:
        """A dry run: GET each distinct table link once; each link shares its link's answer."""

        def describe(link: Link, gate: RateGate) -> LinkResult:
            accepted = self._tulip.describe_link(
                table_link_id=link.table_link_id,
                tokens=token,
                deadline=deadline,
                on_rate_limited=gate.close_for,
            )
            if accepted.deleted_at is not None:  # 200, yet not a link a real run could use
                raise TableLinkDeleted(link.table_link_id, accepted.deleted_at, accepted.deleted_by)
            return LinkResult(link, "valid", tables=accepted.tables)

        distinct = tuple({link.table_link_id: link for link in links}.values())
        described = {r.link.table_link_id: r for r in self._run(distinct, describe, deadline)}
        return Batch(
            tuple(replace(described[link.table_link_id], link=link) for link in links),
            dry_run=True,
        )

    def _run(
        self, links: tuple[Link, ...], work: _Work, deadline: Deadline
    ) -> tuple[LinkResult, ...]:
        """`work` on every link, in order, a few at once (`batch`), each failure kept."""
        gate = RateGate(self._clock)

        def one(index: int, link: Link) -> LinkResult:
            # Lines a link writes (retries) name it.
            with logs.scope(itemIndex=index, tableLinkId=link.table_link_id, action=link.action):
                try:
                    return work(link, gate)
                except Failure as failure:
                    return LinkResult(link, "failed", failure=failure)

        def skip(index: int, link: Link) -> LinkResult:
            return LinkResult(link, "not_attempted", failure=NotAttempted())

        return tuple(
            run_in_order(
                links,
                key=lambda link: link.pair,
                work=one,
                skip=skip,
                concurrency=self._batch_concurrency,
                deadline=deadline,
                gate=gate,
            )
        )
