"""The edge: a module per entry point (webhook, push, eventarc), and what they share: payloads in,
answers and log lines out."""
