"""Running the links of one request: in order per pair, at most `TULIP_BATCH_CONCURRENCY` at once,
all inside the request's deadline; after a 429 the links not yet started wait out Tulip's
`Retry-After` (`RateGate`). A link that cannot start in time is skipped.
"""

from __future__ import annotations

import contextvars
import math
import threading
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from function.timing import Clock, Deadline

_Item = TypeVar("_Item")
_Result = TypeVar("_Result")


class RateGate:
    """The moment before which no new link of the request starts, after Tulip rate-limited."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._opens_at = -math.inf

    def close_for(self, seconds: float) -> None:
        """Tulip asked us to wait `seconds` (from now); a longer earlier wait is kept."""
        with self._lock:
            self._opens_at = max(self._opens_at, self._clock.monotonic() + seconds)

    def wait(self, deadline: Deadline) -> bool:
        """Wait until the gate opens; False (at once) if that would leave no time to work."""
        delay = self._opens_at - self._clock.monotonic()
        if delay <= 0:
            return True
        if not deadline.allows_wait(delay):
            return False
        self._clock.sleep(delay)
        return True


def run_in_order(
    items: Sequence[_Item],
    *,
    key: Callable[[_Item], Hashable],
    work: Callable[[int, _Item], _Result],
    skip: Callable[[int, _Item], _Result],
    concurrency: int,
    deadline: Deadline,
    gate: RateGate,
) -> list[_Result]:
    """`work(index, item)` for every item (or `skip` when it cannot start in time); the results
    in the items' order. Items with equal `key` run one after the other, in order."""
    chains: dict[Hashable, list[int]] = {}
    for index, item in enumerate(items):
        chains.setdefault(key(item), []).append(index)
    results: dict[int, _Result] = {}

    def run_chain(indices: list[int]) -> None:
        for index in indices:
            item = items[index]
            if deadline.remaining() <= 0 or not gate.wait(deadline):
                results[index] = skip(index, item)
            else:
                results[index] = work(index, item)

    workers = min(concurrency, len(chains))
    if workers <= 1:
        for indices in chains.values():
            run_chain(indices)
    else:
        with ThreadPoolExecutor(workers, thread_name_prefix="tulip-link-batch") as pool:
            # Each chain runs in its own copy of the request's context (log fields).
            running = [
                pool.submit(contextvars.copy_context().run, run_chain, indices)
                for indices in chains.values()
            ]
            for future in running:
                future.result()  # a bug in one chain surfaces here, as it would inline
    return [results[index] for index in range(len(items))]
