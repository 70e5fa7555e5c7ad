"""``python -m mmbench.mini.train``: retrain the mini model zoo (see ``driver``)."""

import sys

from mmbench.errors import MMBenchError
from mmbench.mini.train.options import parse_args

options = parse_args(None, prog="python -m mmbench.mini.train")  # before torch is imported
from mmbench.mini.train.driver import main  # noqa: E402

try:
    sys.exit(main(args=options))
except MMBenchError as exc:  # bad input: one line and exit code 2, as the mmbench command does
    print(f"python -m mmbench.mini.train: error: {exc}", file=sys.stderr)
    sys.exit(2)
