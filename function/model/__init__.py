"""The words every layer shares: the status table, the errors, the results, the link."""
