"""`python tests/run_with_counting.py ARGS` = `mmbench ARGS` with the counting test adapter registered
(a script, so torchrun can launch it)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import counting_adapter  # noqa: E402

counting_adapter.register()

from mmbench.cli.main import main  # noqa: E402

sys.exit(main(sys.argv[1:]))
