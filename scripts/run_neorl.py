"""NeoRL suite: the 9 MuJoCo tasks (1000 trajectories) x {MOPO, MOBILE} x {MOREC off, on} x seeds.
NeoRL has no official normaliser: the table's scores use a third-party random/expert table (see
morec/data/scores.py); summary.json files keep the raw returns.

    python scripts/run_neorl.py --seeds 0,1,2 --max-parallel 2          # needs the NeoRL npz files
"""

from suite import execute

TASKS = [f"{d}-v3-{lvl}-1000" for d in ("HalfCheetah", "Hopper", "Walker2d") for lvl in ("low", "medium", "high")]

if __name__ == "__main__":
    execute("neorl", TASKS)
