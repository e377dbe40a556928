"""`make bench`: tulip-link measured side by side with a minimal and a naive function (not deployed)."""
