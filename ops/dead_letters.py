"""The dead letters: list what waits in a dead-letter subscription, and replay it safely.

    python -m ops.dead_letters list SUBSCRIPTION [--json] [filters]
    python -m ops.dead_letters replay SUBSCRIPTION --to TOPIC [--dry-run] [--max-replays 3]
                                                              [--force] [filters]
    filters: --table-link ID  --error-code CODE  --older-than DURATION (90s, 30m, 2h, 7d)
             --limit N

Names are full (`projects/P/subscriptions/S`, `projects/P/topics/T`) or short, with `--project`
or `GOOGLE_CLOUD_PROJECT`. It uses `google-cloud-pubsub` with your Application Default
Credentials, or, with `PUBSUB_EMULATOR_HOST`, the Pub/Sub simulator of `make run`.

`list` changes nothing. It pulls every message the subscription holds (holding them while it
reads, so none comes twice), shows each one (its `messageId`, its age since it was first
published, how it got there: refused by the events function at delivery N, with its
`errorCode` and reason, or given up by Pub/Sub after N deliveries; the link, the intake's
`requestId`, how often it was replayed, and the Cloud Logging query for its lines), then hands
every one back at once (ack deadline 0): none is acknowledged.

`replay` republishes each chosen message to the requests topic with its data, its attributes
(less the reason the events function added) and its ordering key unchanged, plus `replayCount`
(one more than it had), and acknowledges it on
the dead-letter subscription only after Pub/Sub confirmed that publish. A publish that fails
leaves its message where it was, is reported, and makes the exit status 1. A message already
replayed `--max-replays` times is skipped with a word unless `--force`: a message that fails for
good must not loop for ever. Messages go in their publish order, so one pair's keep theirs.
Ctrl-C stops after the message in hand (a second one at once); whatever was not republished is
handed back, and nothing is acknowledged that was not republished first.

Age counts from `CloudPubSubDeadLetterSourceTopicPublishTime`, which Pub/Sub sets when it
dead-letters a message (the publish to the source topic; after a replay, the replay's), else
from the dead letter's own publish time.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO, Any, Self

from function.clients.local_grpc import local_channel
from function.core.dead_letters import (
    DEAD_LETTER_REASON,
    DELIVERY_ATTEMPT,
    ERROR_CODE,
    REASON_ATTRIBUTES,
    TULIP_ERROR_UNIQUE_ID,
    TULIP_STATUS,
)
from function.core.intake import INTAKE_REQUEST_ID

REPLAY_COUNT = "replayCount"
SOURCE_PUBLISH_TIME = "CloudPubSubDeadLetterSourceTopicPublishTime"
SOURCE_DELIVERY_COUNT = "CloudPubSubDeadLetterSourceDeliveryCount"
PULL_BATCH = 100
HOLD_SECONDS = 600  # how long a pulled message is held while the tool works (Pub/Sub's most)
PUBLISH_TIMEOUT_SECONDS = 30
PROGRESS_EVERY = 50
_DURATION = re.compile(r"([0-9]+)([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class DeadLetter:
    """One message waiting in the dead-letter subscription."""

    ack_id: str
    message_id: str
    data: bytes
    attributes: dict[str, str]
    ordering_key: str
    published: datetime.datetime  # this dead letter's own publish time

    @property
    def link(self) -> dict[str, Any]:
        """The link it carries (our own shape), or {} when its data is not one."""
        try:
            value = json.loads(self.data)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    @property
    def first_published(self) -> datetime.datetime:
        """When it was published to the source topic, as Pub/Sub recorded it."""
        given = self.attributes.get(SOURCE_PUBLISH_TIME)
        if given:
            try:
                return datetime.datetime.fromisoformat(given)
            except ValueError:
                pass
        return self.published

    @property
    def attempts(self) -> int | None:
        """The deliveries made before it became a dead letter: the one at which the events
        function refused it, or those after which Pub/Sub gave up."""
        count = self.attributes.get(DELIVERY_ATTEMPT if self.refused else SOURCE_DELIVERY_COUNT, "")
        return int(count) if count.isdigit() else None

    @property
    def refused(self) -> bool:
        """Whether the events function dead-lettered it (with a reason), rather than Pub/Sub."""
        return ERROR_CODE in self.attributes

    @property
    def error_code(self) -> str | None:
        return self.attributes.get(ERROR_CODE)

    def how(self) -> str:
        """How it got there, in a few words."""
        attempts = self.attempts or "?"
        if self.refused:
            return f"refused at delivery {attempts}"
        return f"Pub/Sub gave up after {attempts} deliveries"

    @property
    def replay_count(self) -> int:
        count = self.attributes.get(REPLAY_COUNT, "")
        return int(count) if count.isdigit() else 0

    @property
    def request_id(self) -> str | None:
        """The `requestId` of the webhook request that queued it (queue mode's intake)."""
        return self.attributes.get(INTAKE_REQUEST_ID)

    def age(self, now: datetime.datetime) -> datetime.timedelta:
        return now - self.first_published

    def log_query(self) -> str:
        """The Cloud Logging query for the lines that say why it failed: by the intake's
        `requestId`, and by the pair (a dead letter need not keep its `messageId`)."""
        link = self.link
        terms = []
        if self.request_id:
            terms.append(
                f'jsonPayload.intakeRequestId="{self.request_id}" OR '
                f'jsonPayload.requestId="{self.request_id}"'
            )
        if {"tableLinkId", "leftRecord", "rightRecord"} <= link.keys():
            terms.append(
                f'(jsonPayload.tableLinkId="{link["tableLinkId"]}" AND '
                f'jsonPayload.leftRecord="{link["leftRecord"]}" AND '
                f'jsonPayload.rightRecord="{link["rightRecord"]}")'
            )
        return " OR ".join(terms) or f'jsonPayload.messageId="{self.message_id}"'

    def describe(self, now: datetime.datetime) -> dict[str, Any]:
        """As `list --json` shows it."""
        link = self.link
        return {
            "messageId": self.message_id,
            "ageSeconds": round(self.age(now).total_seconds()),
            "deadLetteredBy": "events function" if self.refused else "Pub/Sub",
            "deliveryAttempts": self.attempts,
            "errorCode": self.error_code,
            "deadLetterReason": self.attributes.get(DEAD_LETTER_REASON),
            "tulipStatus": self.attributes.get(TULIP_STATUS),
            "tulipErrorUniqueID": self.attributes.get(TULIP_ERROR_UNIQUE_ID),
            "tableLinkId": link.get("tableLinkId"),
            "leftRecord": link.get("leftRecord"),
            "rightRecord": link.get("rightRecord"),
            "action": link.get("action"),
            "requestId": self.request_id,
            "replayCount": self.replay_count,
            "orderingKey": self.ordering_key or None,
            "logQuery": self.log_query(),
        }


class Pubsub:
    """The two clients, and what the tool does with them. Closed by `close()` (or `with`)."""

    def __init__(self, emulator: str | None = None) -> None:
        """Google's Pub/Sub; or a local one at `emulator` (host:port, default
        `PUBSUB_EMULATOR_HOST`), over plaintext gRPC on a channel of its own."""
        from google.cloud import pubsub_v1

        emulator = emulator or os.environ.get("PUBSUB_EMULATOR_HOST") or None
        subscriber: dict[str, Any] = {}
        publisher: dict[str, Any] = {}
        if emulator is not None:
            from google.auth.credentials import AnonymousCredentials
            from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport
            from google.pubsub_v1.services.subscriber.transports import SubscriberGrpcTransport

            channel, anonymous = local_channel(emulator), AnonymousCredentials()
            subscriber["transport"] = SubscriberGrpcTransport(
                channel=channel, credentials=anonymous
            )
            publisher["transport"] = PublisherGrpcTransport(channel=channel, credentials=anonymous)
        self.subscriber = pubsub_v1.SubscriberClient(**subscriber)
        options = pubsub_v1.types.PublisherOptions(enable_message_ordering=True)
        self.publisher = pubsub_v1.PublisherClient(publisher_options=options, **publisher)

    def close(self) -> None:
        """Close both clients' connections (every publish was waited for)."""
        self.publisher.transport.close()
        self.subscriber.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def pull_all(self, subscription: str) -> list[DeadLetter]:
        """Every message `subscription` holds, held for HOLD_SECONDS, in publish order."""
        found: dict[str, DeadLetter] = {}
        empty_pulls = 0
        # Google's Pull may answer empty while messages remain: stop after two empty answers.
        while empty_pulls < 2:
            response = self.subscriber.pull(
                subscription=subscription, max_messages=PULL_BATCH, timeout=30
            )
            received = list(response.received_messages)
            if not received:
                empty_pulls += 1
                continue
            empty_pulls = 0
            self.subscriber.modify_ack_deadline(
                subscription=subscription,
                ack_ids=[r.ack_id for r in received],
                ack_deadline_seconds=HOLD_SECONDS,
            )
            for item in received:
                message = item.message
                found.setdefault(
                    message.message_id,
                    DeadLetter(
                        ack_id=item.ack_id,
                        message_id=message.message_id,
                        data=bytes(message.data),
                        attributes=dict(message.attributes),
                        ordering_key=message.ordering_key,
                        published=message.publish_time,
                    ),
                )
        return sorted(found.values(), key=lambda letter: letter.published)

    def hand_back(self, subscription: str, letters: Sequence[DeadLetter]) -> None:
        """Give `letters` back to the subscription at once (ack deadline 0)."""
        for start in range(0, len(letters), PULL_BATCH):
            batch = [letter.ack_id for letter in letters[start : start + PULL_BATCH]]
            self.subscriber.modify_ack_deadline(
                subscription=subscription, ack_ids=batch, ack_deadline_seconds=0
            )

    def republish(self, topic: str, letter: DeadLetter) -> str:
        """Publish `letter` to `topic` as it was, `replayCount` one more; its new message id
        once Pub/Sub confirmed it. Raises what the publish raised."""
        kept = {k: v for k, v in letter.attributes.items() if k not in REASON_ATTRIBUTES}
        attributes = kept | {REPLAY_COUNT: str(letter.replay_count + 1)}
        future = self.publisher.publish(
            topic, letter.data, ordering_key=letter.ordering_key, **attributes
        )
        try:
            message_id: str = future.result(timeout=PUBLISH_TIMEOUT_SECONDS)
        except Exception:
            if letter.ordering_key:  # the client holds the key after a failure: release it
                self.publisher.resume_publish(topic, letter.ordering_key)
            raise
        return message_id

    def ack(self, subscription: str, letter: DeadLetter) -> None:
        self.subscriber.acknowledge(subscription=subscription, ack_ids=[letter.ack_id])


@dataclass(frozen=True)
class Filters:
    """Which messages a command takes."""

    table_link: str | None = None
    older_than: datetime.timedelta | None = None
    limit: int | None = None
    error_code: str | None = None

    def choose(self, letters: Sequence[DeadLetter], now: datetime.datetime) -> list[DeadLetter]:
        chosen = [
            letter
            for letter in letters
            if (self.table_link is None or letter.link.get("tableLinkId") == self.table_link)
            and (self.older_than is None or letter.age(now) > self.older_than)
            and (self.error_code is None or letter.error_code == self.error_code)
        ]
        return chosen if self.limit is None else chosen[: self.limit]


def duration(text: str) -> datetime.timedelta:
    """`90s`, `30m`, `2h`, `7d` (or several: `1h30m`)."""
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 90s, 30m, 2h, 7d")
    return datetime.timedelta(seconds=sum(int(n) * _UNITS[u] for n, u in parts))


def resource_name(name: str, kind: str, project: str | None) -> str:
    """`name` as `projects/P/{kind}/NAME`; a short name takes `project`."""
    if name.startswith("projects/"):
        if not re.fullmatch(rf"projects/[^/]+/{kind}/[^/]+", name):
            raise SystemExit(f"{name} is not a full {kind[:-1]} name (projects/P/{kind}/NAME)")
        return name
    if not project:
        raise SystemExit(
            f"{name} is a short name: give --project (or set GOOGLE_CLOUD_PROJECT), or the full "
            f"name projects/P/{kind}/{name}"
        )
    return f"projects/{project}/{kind}/{name}"


def show_age(age: datetime.timedelta) -> str:
    """`3d4h`, `2h15m`, `5m30s`, `42s`: the two largest units."""
    seconds = max(0, int(age.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, rest = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes}m"
    return f"{minutes}m{rest}s" if minutes else f"{rest}s"


def table(letters: Sequence[DeadLetter], now: datetime.datetime) -> list[str]:
    """The listing: a row per message, each with its log query under it."""
    header = ("messageId", "age", "how", "errorCode", "tableLinkId", "leftRecord → rightRecord",
              "action", "requestId", "replays")  # fmt: skip
    rows = []
    for letter in letters:
        link = letter.link
        rows.append(
            (
                letter.message_id,
                show_age(letter.age(now)),
                letter.how(),
                letter.error_code or "-",
                str(link.get("tableLinkId", "?")),
                f"{link.get('leftRecord', '?')} → {link.get('rightRecord', '?')}",
                str(link.get("action", "?")),
                letter.request_id or "-",
                str(letter.replay_count),
            )
        )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(header, widths, strict=True)).rstrip()]
    for letter, row in zip(letters, rows, strict=True):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if letter.refused:
            lines.append(f"    reason: {letter.attributes.get(DEAD_LETTER_REASON, '?')}")
        lines.append(f"    logs: {letter.log_query()}")
    return lines


class Interrupts:
    """Ctrl-C: the first stops after the message in hand, a second at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None
        # Only the main thread may set a handler; elsewhere (the local console's replay button)
        # nothing reaches it from a keyboard anyway.
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._record)

    def _record(self, number: int, frame: object) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def restore(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def list_command(
    pubsub: Pubsub, subscription: str, filters: Filters, as_json: bool, out: IO[str]
) -> int:
    held: list[DeadLetter] = []
    try:
        held = pubsub.pull_all(subscription)
        now = datetime.datetime.now(datetime.UTC)
        chosen = filters.choose(held, now)
        if as_json:
            oldest = max((letter.age(now) for letter in chosen), default=None)
            summary = {
                "subscription": subscription,
                "count": len(chosen),
                "oldestAgeSeconds": round(oldest.total_seconds()) if oldest else None,
                "messages": [letter.describe(now) for letter in chosen],
            }
            out.write(json.dumps(summary, indent=2) + "\n")
            return 0
        if chosen:
            out.write("\n".join(table(chosen, now)) + "\n")
            oldest = max(letter.age(now) for letter in chosen)
            count = f"{len(chosen)} message{'s' if len(chosen) != 1 else ''}"
            out.write(f"\n{count}; the oldest waited {show_age(oldest)}.\n")
        else:
            out.write(f"No messages in {subscription}.\n")
        return 0
    finally:
        pubsub.hand_back(subscription, held)  # listing changes nothing


def replay_command(
    pubsub: Pubsub,
    subscription: str,
    topic: str,
    filters: Filters,
    *,
    dry_run: bool,
    max_replays: int,
    force: bool,
    out: IO[str],
    progress: Callable[[str], None],
) -> int:
    held: list[DeadLetter] = []
    done: set[str] = set()  # acked, so not to be handed back
    replayed = skipped = failed = 0
    interrupts = Interrupts()
    try:
        held = pubsub.pull_all(subscription)
        now = datetime.datetime.now(datetime.UTC)
        chosen = filters.choose(held, now)
        for number, letter in enumerate(chosen, 1):
            if interrupts.requested:
                out.write("Interrupted: the rest is handed back, untouched.\n")
                break
            link = letter.link
            what = (
                f"{letter.message_id} ({link.get('tableLinkId', '?')}: "
                f"{link.get('leftRecord', '?')} → {link.get('rightRecord', '?')}, "
                f"{link.get('action', '?')})"
            )
            if letter.replay_count >= max_replays and not force:
                skipped += 1
                out.write(
                    f"skipped {what}: replayed {letter.replay_count} times already "
                    f"(--max-replays {max_replays}; --force to replay it anyway)\n"
                )
                continue
            if dry_run:
                replayed += 1
                out.write(f"would replay {what} to {topic}\n")
                continue
            try:
                new_id = pubsub.republish(topic, letter)
            except Exception as error:  # noqa: BLE001 - reported; the message stays where it was
                failed += 1
                out.write(f"FAILED {what}: {type(error).__name__}: {error}; left where it was\n")
                continue
            pubsub.ack(subscription, letter)  # only now: it is safely on the topic
            done.add(letter.message_id)
            replayed += 1
            out.write(f"replayed {what} as {new_id}\n")
            if number % PROGRESS_EVERY == 0:
                progress(f"... {number} of {len(chosen)} done")
    finally:
        interrupts.restore()
        pubsub.hand_back(subscription, [x for x in held if x.message_id not in done])
    verb = "would replay" if dry_run else "replayed"
    out.write(f"\n{verb} {replayed}, skipped {skipped}, failed {failed}.\n")
    return 1 if failed else 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="python -m ops.dead_letters",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    top.add_argument(
        "--project", default=os.environ.get("GOOGLE_CLOUD_PROJECT"), help="for short names"
    )
    commands = top.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="show what waits; changes nothing")
    replay = commands.add_parser("replay", help="republish, then ack, each chosen message")
    for command in (listing, replay):
        command.add_argument("subscription", help="the dead-letter subscription")
        command.add_argument("--table-link", help="only messages for this table link id")
        command.add_argument(
            "--error-code", help="only messages refused with this errorCode (TULIP_REJECTED, ...)"
        )
        command.add_argument(
            "--older-than", type=duration, help="only messages older than this (30m, 2h, 7d)"
        )
        command.add_argument("--limit", type=int, help="at most this many messages")
    listing.add_argument("--json", action="store_true", help="for scripts")
    replay.add_argument("--to", required=True, help="the requests topic")
    replay.add_argument("--dry-run", action="store_true", help="say what would be replayed")
    replay.add_argument(
        "--max-replays", type=int, default=3, help="skip messages replayed this often (3)"
    )
    replay.add_argument("--force", action="store_true", help="replay them anyway")
    return top


def main(argv: list[str] | None = None, out: IO[str] | None = None) -> int:
    """Run one command; its exit status."""
    args = parser().parse_args(argv)
    out = out or sys.stdout
    subscription = resource_name(args.subscription, "subscriptions", args.project)
    filters = Filters(args.table_link, args.older_than, args.limit, args.error_code)
    with Pubsub() as pubsub:
        try:
            if args.command == "list":
                return list_command(pubsub, subscription, filters, args.json, out)
            return replay_command(
                pubsub,
                subscription,
                resource_name(args.to, "topics", args.project),
                filters,
                dry_run=args.dry_run,
                max_replays=args.max_replays,
                force=args.force,
                out=out,
                progress=lambda line: print(line, file=sys.stderr, flush=True),
            )
        except KeyboardInterrupt:  # a second Ctrl-C: the commands handed back what they held
            out.write(
                "\nStopped at once: every message not republished is back in the subscription "
                "(one in hand may have been republished too: replaying it twice is harmless).\n"
            )
            return 130


if __name__ == "__main__":
    sys.exit(main())
