"""A link: which table link, which two records, link or unlink; and its JSON, our own shape.

`Link.as_json()` is the one place the four keys are spelled: an intake message's data, an answer,
a log line and the tools all use it (or `LINK_KEYS` to read one back).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

Action = Literal["link", "unlink"]
ACTIONS: tuple[Action, ...] = get_args(Action)
LINK_KEYS = ("tableLinkId", "leftRecord", "rightRecord", "action")


@dataclass(frozen=True)
class Link:
    """A validated link."""

    table_link_id: str
    left_record: str
    right_record: str
    action: Action = "link"

    @property
    def pair(self) -> tuple[str, str, str]:
        """What two requests must not change at the same time: the link and its two records."""
        return (self.table_link_id, self.left_record, self.right_record)

    def as_json(self) -> dict[str, str]:
        """`{"tableLinkId", "leftRecord", "rightRecord", "action"}`."""
        values = (self.table_link_id, self.left_record, self.right_record, self.action)
        return dict(zip(LINK_KEYS, values, strict=True))
