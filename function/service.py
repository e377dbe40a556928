"""The core: a request object in, one Tulip call, a `Linked` outcome out, or a `Failure` raised.

Free of Flask and CloudEvents: `handlers` unwraps HTTP bodies and Pub/Sub messages into the
plain JSON object this takes. `current` is the process's one service, built from the
environment on first use.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from . import logs
from .config import Once, Settings, load_settings
from .credentials import SecretCache, SecretManager, TulipCredentials
from .models import parse_link_request
from .outcomes import Linked
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
        self.secrets = SecretCache(manager.read, settings.credentials_ttl, clock)
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

    def link(self, data: Mapping[str, Any], deadline: Deadline) -> Linked:
        """Validate `data` (the request's JSON object) and make the one Tulip call it asks for."""
        request = parse_link_request(
            data,
            default_table_link_id=self.settings.default_table_link_id,
            allowed_table_link_ids=self.settings.allowed_table_link_ids,
        )
        logs.bind(tableLinkId=request.link_id, action=request.action)
        answer = self.tulip.change_link(
            table_link_id=request.link_id,
            action=request.action,
            left_record=request.left,
            right_record=request.right,
            credentials=self.credentials,
            deadline=deadline,
        )
        return Linked(
            action=request.action,
            table_link_id=request.link_id,
            left_record=request.left,
            right_record=request.right,
            tulip_status=answer.status,
            attempts=answer.attempts,
        )


current: Once[LinkService] = Once(lambda: LinkService(load_settings(os.environ)))
