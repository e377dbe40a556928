"""What a webhook's request comes to, once authenticated and parsed: its links read and validated,
then queued (queue mode) or made (direct mode), once per delivery where deduplication is on.

A dry run neither reads nor writes the deliveries' store. A request without a delivery id, or
any request while deduplication is off, is acted on as it comes; its log line says whether it
was deduplicated (`deduplicated`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from function import logs
from function.core.deliveries import Deliveries
from function.core.intake import Intake
from function.core.service import LinkService
from function.model.delivery import DeliveryId
from function.model.results import Ignored, Result
from function.timing import Deadline


class Acceptance:
    """A webhook function's core: `service` validates (and, without `intake`, links), `intake`
    queues, `deliveries` remembers what was accepted (None: deduplication off)."""

    def __init__(
        self, service: LinkService, intake: Intake | None, deliveries: Deliveries | None
    ) -> None:
        self._service = service
        self._intake = intake
        self._deliveries = deliveries

    def accept(
        self,
        data: Mapping[str, Any],
        deadline: Deadline,
        *,
        request_id: str,
        delivery: DeliveryId | None,
        dry_run: bool = False,
        headers: Mapping[str, str] | None = None,
    ) -> Result:
        """Validate `data` (read with the request's `headers`, for a mapping that tests them),
        then act on it: a dry run checks, anything else is queued or linked."""
        plan = self._service.plan(data, headers=headers)
        if isinstance(plan, Ignored):
            return plan
        if dry_run:
            return self._service.act(plan, deadline, dry_run=True)

        def act() -> Result:
            if self._intake is None:
                return self._service.act(plan, deadline)
            webhook_id = None if delivery is None else delivery.value
            return self._intake.queue(plan, deadline, request_id=request_id, webhook_id=webhook_id)

        if self._deliveries is None:
            return act()
        if delivery is None:
            # Nothing to know it again by: accepted as it comes, and said so.
            logs.bind(deduplicated=False)
            return act()
        logs.bind(deduplicated=True)
        return self._deliveries.once(delivery, request_id, deadline, act)
