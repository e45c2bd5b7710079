"""D4RL suite: the 12 locomotion tasks x {MOPO, MOBILE} x {MOREC off, on} x seeds -> one table.

    python scripts/run_d4rl.py --seeds 0,1,2                        # local Ray; needs the D4RL hdf5 files
    python scripts/run_d4rl.py --address auto --results /shared/d4rl  # on a running Ray cluster
    python scripts/run_d4rl.py --backend pool --max-parallel 2 --tasks hopper-medium-replay-v2 \\
        --smoke --dataset data/collect/hopper-medium-replay.hdf5

Same as `morec suite d4rl ...`; see morec/suite/.
"""

import sys

from morec.suite.cli import main

if __name__ == "__main__":
    sys.exit(main("d4rl"))
