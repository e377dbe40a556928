"""What CI runs besides the tests: `make fuzz`, `make check-infra`'s provider-schema check, `make
soak`, and the browser the console's test drives."""
