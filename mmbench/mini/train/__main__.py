"""``python -m mmbench.mini.train``: retrain the mini model zoo (see ``driver``)."""

import sys

from mmbench.errors import MMBenchError
from mmbench.mini.train.driver import main

try:
    sys.exit(main())
except MMBenchError as exc:  # bad input: one line and exit code 2, as the mmbench command does
    print(f"python -m mmbench.mini.train: error: {exc}", file=sys.stderr)
    sys.exit(2)
