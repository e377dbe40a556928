"""Who the caller is: each `WEBHOOK_AUTH` scheme a module of its own (as its sender signs), and
the `Authenticator` that applies the configured one. The schemes and their headers:
docs/senders.md; why they are built so: docs/design.md."""
