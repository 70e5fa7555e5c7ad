"""``python -m mmbench`` (and ``torchrun -m mmbench``) runs the command-line interface."""

import sys

from mmbench.cli.main import main

sys.exit(main())
