"""`python -m judge.cli` (as `accelerate launch -m judge.cli train ...` runs it) is `judgeforge`."""

import sys

from judge.cli import main

sys.exit(main())
