"""MOREC's claim, measured with the MuJoCo oracle on datasets made by ``morec collect``.

For each dataset: train the ensemble (or reuse it), train dynamics rewards with the fixed-MLE
and the adversarial generator, then compare the oracle error of what H-step rollouts write into
the model buffer with and without the filter, under policies other than the behaviour policy.
Prints one JSON object (also written to ``--out/results.json``).

    python scripts/morec_generalisation.py --collect-dir data/hopper --levels medium-replay,medium \\
        --out runs/generalisation/hopper
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from morec.cli import main as morec_main  # noqa: E402


def run_json(argv: list[str]) -> dict:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        morec_main(argv)
    text = buffer.getvalue()
    return json.loads(text[text.index("{"):])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--collect-dir", required=True, help="output directory of morec collect")
    p.add_argument("--levels", default="medium-replay,medium")
    p.add_argument("--out", required=True)
    p.add_argument("--generators", default="fixed,adversarial")
    p.add_argument("--updates", type=int, default=3000)
    p.add_argument("--horizon", type=int, default=100)
    p.add_argument("--starts", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    collect_dir, out = Path(args.collect_dir), Path(args.out)
    summary = json.loads((collect_dir / "collect_summary.json").read_text())
    policies = collect_dir / "behaviour_sac"
    medium = policies / summary["medium_policy"]["policy_path"]
    expert = policies / summary["expert_policy"]["policy_path"]
    domain = summary["datasets"]["medium:d4rl"]["path"].split("/")[-1].split("-")[0]
    results = {"collect_dir": str(collect_dir), "env_id": summary["env_id"], "runs": {}}
    for level in args.levels.split(","):
        dataset = str(collect_dir / f"{domain}-{level}.hdf5")
        dyn_dir = out / level / "dynamics"
        if not (dyn_dir / "dynamics.pt").exists():
            run_json(["train-dynamics", "--dataset", dataset, "--out", str(dyn_dir), "--seed", str(args.seed), "--no-progress"])
        entry = {"dynamics": json.loads((dyn_dir / "report.json").read_text())["fit"]["elite_holdout_mse"]}
        for generator in args.generators.split(","):
            reward_dir = out / level / f"reward_{generator}"
            if (reward_dir / "report.json").exists():
                train = json.loads((reward_dir / "report.json").read_text())
            else:
                train = run_json(["train-reward", "--dataset", dataset, "--dynamics", str(dyn_dir), "--out", str(reward_dir),
                                  "--generator", generator, "--updates", str(args.updates), "--seed", str(args.seed), "--no-progress"])
            evals = {}
            for name, extra in (("random", ["--policy", "random"]),
                                ("noisy_behaviour", ["--policy", "noisy-behaviour", "--policy-path", str(medium)]),
                                ("expert", ["--policy", "checkpoint", "--policy-path", str(expert)])):
                rep = run_json(["eval-model", "--dataset", dataset, "--dynamics", str(dyn_dir), "--reward", str(reward_dir),
                                "--horizon", str(args.horizon), "--starts", str(args.starts), "--seed", str(args.seed), *extra])
                evals[name] = {"ratio": rep["filtered_over_unfiltered_error"], "spearman": rep["reward_error_spearman"],
                               "unfiltered_error": rep["unfiltered"]["error"], "filtered_error": rep["filtered"]["error"],
                               "unfiltered_length": rep["unfiltered"]["mean_length"], "filtered_length": rep["filtered"]["mean_length"],
                               # step 1 has the same rows in both runs: the selection effect without truncation
                               "first_step_ratio": rep["filtered"]["error_first_step"] / rep["unfiltered"]["error_first_step"]}
            entry[generator] = {"discrimination": train["discrimination"], "reward_fit_seconds": train["fit"]["seconds"], "eval": evals}
        results["runs"][level] = entry
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
