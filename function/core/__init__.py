"""Plain data in, a result out: what a request asks for (plan, validate, map), made (service,
batch) or queued (intake). No web framework, no settings: what it needs is handed in."""
