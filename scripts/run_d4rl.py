"""D4RL suite: the 12 locomotion tasks x {MOPO, MOBILE} x {MOREC off, on} x seeds -> one table.

    python scripts/run_d4rl.py --seeds 0,1,2 --max-parallel 2           # needs the D4RL hdf5 files
    python scripts/run_d4rl.py --tasks hopper-medium-replay-v2 --smoke --dataset data/hopper/hopper-medium-replay.hdf5
"""

from suite import execute

TASKS = [f"{d}-{lvl}-v2" for d in ("halfcheetah", "hopper", "walker2d") for lvl in ("random", "medium", "medium-replay", "medium-expert")]

if __name__ == "__main__":
    execute("d4rl", TASKS)
