"""The core: a request object in, one Tulip call, a `LinkDone` out, or a `Failure` raised.

Free of Flask and CloudEvents: `handlers` unwraps HTTP bodies and Pub/Sub messages into the
plain JSON object this takes. One `LinkService` serves every request of a process (`instance`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import logs
from .config import Settings
from .credentials import TulipCredentials
from .models import parse_link_request
from .outcomes import LinkDone
from .secret_manager import SecretCache, SecretManager
from .timing import SYSTEM_CLOCK, Backoff, Clock, Deadline
from .tulip import TulipClient


class LinkService:
    """Everything one process shares between requests: settings, secret cache, Tulip session."""

    def __init__(self, settings: Settings, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.settings = settings
        self.clock = clock
        backoff = Backoff()
        manager = SecretManager(
            emulator_host=settings.secret_manager_emulator_host, clock=clock, backoff=backoff
        )
        self.secrets = SecretCache(manager.read, settings.secret_cache_ttl, clock)
        self.credentials = TulipCredentials(settings, self.secrets)
        self.tulip = TulipClient(
            base_url=settings.tulip_base_url,
            workspace_id=settings.workspace_id,
            timeout=settings.timeout,
            max_attempts=settings.max_attempts,
            clock=clock,
            backoff=backoff,
        )

    def deadline(self) -> Deadline:
        """A new request's deadline, counted from now."""
        return Deadline(self.clock, self.settings.deadline)

    def link(self, data: Mapping[str, Any], deadline: Deadline) -> LinkDone:
        """Validate `data` (the request's JSON object) and make the one Tulip call it asks for."""
        request = parse_link_request(
            data,
            default_table_link_id=self.settings.default_table_link_id,
            allowed_table_link_ids=self.settings.allowed_table_link_ids,
        )
        logs.bind(tableLinkId=request.link_id, action=request.action)
        accepted = self.tulip.change_link(
            table_link_id=request.link_id,
            action=request.action,
            left_record=request.left,
            right_record=request.right,
            credentials=self.credentials,
            deadline=deadline,
        )
        return LinkDone(
            action=request.action,
            table_link_id=request.link_id,
            left_record=request.left,
            right_record=request.right,
            tulip_status=accepted.status,
            attempts=accepted.attempts,
        )
