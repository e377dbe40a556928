"""Tools for working on tulip-link; never deployed. Tools for people who run a deployment are in
`ops/`.

    simulators/  stand-ins for what lies outside this machine: Tulip, Pub/Sub, Secret Manager
    runner/      `make run` and `make demo`: the deployed shape on loopback, and its console
    checks/      what CI runs besides the tests: the contract fuzzer, the provider-schema check,
                 the soak, the browser install
    bench/       `make bench`: tulip-link measured beside the alternatives
    examples/    example requests and mappings
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the repository's root
