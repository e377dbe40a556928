"""`python -m devtools.runner`: see `devtools.runner.run`."""

import sys

from devtools.runner.run import main

sys.exit(main())
