"""`python -m devtools.bench`: see `devtools.bench.measure`."""

import sys

from devtools.bench.measure import main

sys.exit(main())
