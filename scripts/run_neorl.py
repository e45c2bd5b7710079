"""NeoRL suite: the 9 MuJoCo tasks (1000 trajectories) x {MOPO, MOBILE} x {MOREC off, on} x seeds.
NeoRL has no official normaliser: the table's scores use a third-party random/expert table (see
morec/data/scores.py); summary.json files keep the raw returns.

    python scripts/run_neorl.py --seeds 0,1,2                       # local Ray; needs the NeoRL npz files

Same as `morec suite neorl ...`; see morec/suite/.
"""

import sys

from morec.suite.cli import main

if __name__ == "__main__":
    sys.exit(main("neorl"))
