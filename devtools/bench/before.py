"""The events function as it was before outages were absorbed, for `devtools.bench.backlog`'s
side-by-side: a delivery tries Tulip up to `TULIP_MAX_ATTEMPTS` times and waits out any
`Retry-After` that fits its deadline (the bench pairs it with Pub/Sub giving up after 5
deliveries). Served by functions-framework as `--source devtools/bench/before.py`."""

from function import instance

instance.DELIVERY_SECONDS = 3600.0  # no deadline of its own: TULIP_DEADLINE_SECONDS decides
instance.DELIVERY_LONGEST_WAIT_SECONDS = 3600.0  # any wait: the deadline decides

from main import link_records_push  # after the settings above

__all__ = ["link_records_push"]
