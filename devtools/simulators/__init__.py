"""The simulators: Tulip, Pub/Sub and Secret Manager as tulip-link meets them, on loopback, for the
tests, `make run` and `make bench`."""
