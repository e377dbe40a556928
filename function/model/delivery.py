"""A sender's own id of one delivery: what a retry or a replay of it carries again."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DeliveryId:
    """A delivery's id, and whether the caller's signature covers it (then it stops replays of a
    captured request, not only a sender's honest retries)."""

    value: str
    signed: bool
