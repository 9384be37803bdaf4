"""`python -m judge.cli` (as `accelerate launch -m judge.cli train ...` runs it) is `judgeforge`."""

import sys

from judge.cli import main

if __name__ == "__main__":  # not when a spawned child process (a merge in serve) imports it again
    sys.exit(main())
