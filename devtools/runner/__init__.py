"""`make run` and `make demo` (`python -m devtools.runner`): the deployed shape on loopback, the
console that shows it at work, and how its pieces are started and stopped."""
