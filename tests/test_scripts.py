"""The evidence scripts' bookkeeping (their training and checks run through the tested command line)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from argparse import Namespace
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def fake_run(run_dir: Path, score: float, length: float, gap: float | None) -> None:
    """A finished run's summary.json and config.yaml, and (``gap`` given) its eval_model.json."""
    run_dir.mkdir(parents=True)
    (run_dir / "policy.pt").write_text("")
    (run_dir / "config.yaml").write_text(
        "filter:\n  threshold: 0.6\n  consensus_weight: 0.0\n  mode: softmax\n  truncate_as: terminal\n"
    )
    summary = {
        "last_score": score,
        "last10_mean_score": score - 1,
        "best_score": score + 1,
        "policy": "policy.pt",
        "rollouts": {"mean_length": length, "truncation_rate": 0.5, "model_buffer_size": 1000},
        "models": {"dynamics": "dyn", "reward": "rew"},
        "gradient_steps": 2000,
        "wall_seconds": 10.0 * length,
    }
    (run_dir / "summary.json").write_text(json.dumps(summary))
    if gap is not None:
        report = {
            "false_truncation_rate": 0.1,
            "policies": {
                "p": {
                    "true_return_mean": 10.0,
                    "unfiltered": {"return_mean": 10.0 + gap, "return_bias": gap, "return_abs_error": abs(gap)},
                    "filtered": {"return_abs_error": 1.0},
                }
            },
        }
        (run_dir / "eval_model.json").write_text(json.dumps(report))


def test_learning_table_marks_partial_variants_and_reads_each_run(tmp_path):
    learning = load_script("morec_learning")
    runs = tmp_path / "runs" / "hopper-medium-v2"
    fake_run(runs / "mopo" / "seed0", 10.0, 5.0, gap=4.0)
    fake_run(runs / "mopo" / "seed1", 20.0, 5.0, gap=2.0)
    fake_run(runs / "mopo_morec_matched" / "seed0", 30.0, 3.0, gap=-2.0)  # seed 1 not finished
    meta = {"task": "hopper-medium-v2", "dataset": "d.hdf5", "same_config_as": {}}
    bc = {"runs": [{"normalized_score": 5.0}, {"normalized_score": 7.0}], "dataset_mean_return": 100.0}
    args = Namespace(horizon=100, starts=500)
    learning.tabulate(tmp_path, meta, ["mopo", "mopo_morec_matched", "paper/mopo_morec"], [0, 1], "d.hdf5", bc, args)
    rows = {r["variant"]: r for r in json.loads((tmp_path / "table.json").read_text())["rows"]}
    mopo, matched, paper = rows["MOPO"], rows["MOPO + MOREC (matched)"], rows["MOPO + MOREC (paper)"]
    assert (mopo["seeds"], mopo["partial"], mopo["last"], mopo["exploitation_gap"]) == (
        "2/2",
        False,
        "15.0 ± 5.0",
        "3.0",
    )
    assert (matched["seeds"], matched["partial"], matched["rollout_length"]) == ("1/2", True, "3.0")
    assert (mopo["false_truncation_rate"], matched["false_truncation_rate"]) == (
        "–",
        "0.100",
    )  # only runs that filtered
    assert (paper["seeds"], paper["partial"], paper["last"]) == ("0/2", True, "–")
    # wall time per 1,000 steps (10 s × length over 2,000 steps) and its ratio to the first row, MOPO
    assert (mopo["wall_s_per_1k_steps"], matched["wall_s_per_1k_steps"], matched["wall_vs_first"]) == (
        "25.0",
        "15.0",
        "0.60",
    )
    assert paper["wall_vs_first"] == "–"
    assert rows["BC"]["last"] == "6.0 ± 1.0"
    table = (tmp_path / "table.md").read_text()
    assert "MOPO + MOREC (matched) (partial)" in table and "Dataset mean return 100.0" in table


def test_learning_runs_a_config_once_and_reports_it_for_both_variants(tmp_path):
    learning = load_script("morec_learning")
    # on HalfCheetah MOREC's λ is Kit's, so the paper config is the matched one; on Hopper it is not
    assert learning.same_config_as(
        "halfcheetah-medium-replay-v2", ["mopo", "mopo_morec_matched", "paper/mopo_morec"], [], False
    ) == {"paper/mopo_morec": "mopo_morec_matched"}
    assert (
        learning.same_config_as(
            "hopper-medium-replay-v2", ["mopo", "mopo_morec_matched", "paper/mopo_morec"], [], False
        )
        == {}
    )
    runs = tmp_path / "runs" / "halfcheetah-medium-replay-v2"
    fake_run(runs / "mopo_morec_matched" / "seed0", 30.0, 3.0, gap=1.0)
    meta = {
        "task": "halfcheetah-medium-replay-v2",
        "dataset": "d.hdf5",
        "same_config_as": {"paper/mopo_morec": "mopo_morec_matched"},
    }
    learning.tabulate(
        tmp_path,
        meta,
        ["mopo_morec_matched", "paper/mopo_morec"],
        [0],
        "d.hdf5",
        None,
        Namespace(horizon=100, starts=500),
    )
    matched, paper = json.loads((tmp_path / "table.json").read_text())["rows"]
    assert paper["variant"].startswith("MOPO + MOREC (paper) = MOPO + MOREC (matched)")
    assert (paper["seeds"], paper["last"]) == (matched["seeds"], matched["last"]) == ("1/1", "30.0 ± 0.0")


def test_learning_reruns_behaviour_cloning_for_new_seeds(tmp_path):
    learning = load_script("morec_learning")
    bc_file = tmp_path / "bc.json"
    bc_file.write_text(
        json.dumps({"runs": [{"seed": 1, "normalized_score": 5.0}, {"seed": 0, "normalized_score": 4.0}]})
    )
    assert learning.bc_seeds(bc_file) == [0, 1]  # the main loop reruns BC when these differ from --seeds


def test_check_subsets_are_written_once_and_a_size_too_large_is_one_line(tmp_path):
    from morec.data import load_dataset
    from tests.helpers import random_dataset_file

    check = load_script("morec_check")
    data = random_dataset_file(tmp_path / "hopper-medium.hdf5", steps=1_000)
    path = check.episode_subset_file(data, 400, 0, tmp_path)
    assert path.name == "hopper-medium-400-seed0.hdf5" and 0 < len(load_dataset(path)) <= 400
    assert check.episode_subset_file(data, 400, 0, tmp_path) == path  # kept, not drawn again
    with pytest.raises(
        SystemExit,
        match=r"^morec_check: error: --transitions: a subset of 5,000 transitions was asked of a "
        r"dataset of 1,000; ask for at most 1,000$",
    ):
        check.episode_subset_file(data, 5_000, 0, tmp_path)


def test_check_variants_may_be_distilled_and_an_unknown_one_is_one_line():
    check = load_script("morec_check")
    assert check.variant_names("paper,paper-auto-distilled") == ["paper", "paper-auto-distilled"]
    with pytest.raises(SystemExit, match=r"^morec_check: error: --variants: unknown paper-x-distilled; known: default"):
        check.variant_names("paper,paper-x-distilled")


def test_scale_plan_orders_its_jobs_and_knows_what_is_done(tmp_path, capsys):
    scale = load_script("morec_scale")
    root = tmp_path / "scale"
    assert scale.main(["--root", str(root), "--tasks", "hopper,halfcheetah,walker2d", "--plan"]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = [line.split()[1] for line in lines]
    assert names[:3] == ["collect:hopper", "collect:halfcheetah", "collect:walker2d"]
    assert names[3:5] == ["check:hopper:1000000", "check:halfcheetah:1000000"]
    # the choosing tasks' seeds, which the choice needs, before anything the choice does not need
    learning = [f"learn:{task}:seeds{k}" for k in (1, 2, 3) for task in ("hopper", "halfcheetah")]
    assert names[5:12] == [*learning[:2], "replay:halfcheetah", *learning[2:]]  # rule 4's runs after the first seeds
    assert names[12] == "check:walker2d:1000000"
    assert names.index("check:walker2d:300000") < names.index("learn:walker2d:seeds1")
    assert all(line.startswith("todo") for line in lines)
    # the confirming task trains MOPO, the paper's MOREC and (once chosen) the recommended variant only
    assert sorted(p.stem for p in (root / "configs" / "d4rl" / "walker2d-medium-v2").glob("*.yaml")) == [
        "mopo",
        "mopo_morec_paper",
    ]
    assert "truncate_as: stop" in (root / "configs" / "d4rl" / "hopper-medium-v2" / "mopo_morec_stop.yaml").read_text()
    table = tmp_path / "table.json"
    table.write_text(json.dumps({"seeds": [0, 1], "rows": [{"partial": True}]}))
    assert scale.learning_complete(table, 1) and not scale.learning_complete(table, 2)  # seed 1 still running
    rows = [{"variant": v, "partial": False} for v in scale.CHECK_VARIANTS.split(",")]
    table.write_text(json.dumps({"rows": rows}))
    assert scale.check_complete(table, scale.CHECK_VARIANTS)
    assert not scale.check_complete(table, scale.FULL_CHECK_VARIANTS)  # the distilled rows are still to come
    with pytest.raises(SystemExit, match="--only: no job named 'learn:hopper'"):
        scale.main(["--root", str(root), "--tasks", "hopper", "--only", "learn:hopper"])
    with pytest.raises(SystemExit, match="--tasks: unknown task 'ant'"):
        scale.main(["--root", str(root), "--tasks", "ant", "--plan"])


def test_the_shipped_recommendation_is_the_candidate_the_rule_chose():
    """scripts/make_configs.py's recommended settings are exactly the overrides of the study's
    candidate it names, laid over the same matched config."""
    configs, scale = load_script("make_configs"), load_script("morec_scale")
    base, overrides = scale.CANDIDATES[configs.RECOMMENDED_CANDIDATE]
    assert base == "mopo_morec_matched"
    assert sorted(f"{key}={value}" for key, (value, _) in configs.RECOMMENDED.items()) == sorted(overrides)


def test_scale_records_a_job_it_finds_done_without_claiming_its_commit(tmp_path, capsys):
    scale = load_script("morec_scale")
    root = tmp_path / "scale"
    (root / "data" / "hopper").mkdir(parents=True)
    for name in ("collect_summary.json", "hopper-medium.hdf5"):  # collected by hand, before this runner
        (root / "data" / "hopper" / name).write_text("{}")
    assert scale.main(["--root", str(root), "--tasks", "hopper", "--only", "collect:hopper", "--no-learning"]) == 0
    record = json.loads((root / "jobs.json").read_text())["collect:hopper"]
    assert record == {"commit": "(found done; see its log)", "state": "done"}
    assert "1/1 jobs done" in capsys.readouterr().out
    # a job the last runner left running (it was stopped with it) is not reported as running
    record = json.loads((root / "jobs.json").read_text())
    record["collect:walker2d"] = {"state": "running", "commit": "abc1234"}
    (root / "jobs.json").write_text(json.dumps(record))
    assert scale.main(["--root", str(root), "--tasks", "hopper", "--only", "collect:hopper", "--no-learning"]) == 0
    assert json.loads((root / "jobs.json").read_text())["collect:walker2d"]["state"] == "stopped (runner restarted)"
    # status.md names the processor a job ran on beside its commit
    job = scale.Job("collect:hopper", cmd=[], outputs=[])
    scale.write_status(root, [job], {job.name: {"state": "running", "commit": "abc1234", "machine": "Some CPU (AVX2)"}})
    assert "| collect:hopper | running | abc1234 | Some CPU (AVX2) |" in (root / "status.md").read_text()


def test_morec_cost_runs_differ_only_in_morec_and_a_missing_task_is_one_line():
    bench = load_script("bench_morec_cost")
    args = Namespace(
        benchmark="d4rl", task="hopper-medium-v2", dataset="d.hdf5", out="o", epochs=3, set=[], device="cpu"
    )
    mopo, morec, distilled, *_ = (bench.variant_config(v, args) for v in bench.VARIANTS)
    assert (mopo.morec, morec.morec, morec.filter.distilled, distilled.filter.distilled) == (False, True, False, True)
    for cfg in (bench.variant_config(v, args) for v in bench.VARIANTS):  # the same budget, seed and evaluation
        assert (cfg.train.epochs, cfg.seed, cfg.train.evaluate_in_background) == (3, 0, "off")
        assert (cfg.agent, cfg.rollout.penalty_coef) == (mopo.agent, mopo.rollout.penalty_coef)
    with pytest.raises(
        SystemExit, match="bench_morec_cost: error: config file .*ant-medium-v2/mopo.yaml does not exist"
    ):
        bench.main(["--dataset", "d.hdf5", "--task", "ant-medium-v2", "--out", "o"])


@pytest.mark.parametrize("variants", ["mopo_morec", "mopo,mopo_morec_fast"])
def test_morec_cost_variants_start_with_the_host_and_exist(variants, capsys):
    bench = load_script("bench_morec_cost")
    with pytest.raises(SystemExit):
        bench.main(["--dataset", "d.hdf5", "--task", "hopper-medium-v2", "--out", "o", "--variants", variants])
    assert "--variants must start with mopo (the host) and name only mopo, mopo_morec, " in capsys.readouterr().err


def test_learning_names_a_missing_paper_config_in_one_line(tmp_path):
    learning = load_script("morec_learning")
    args = [
        "--dataset",
        "d.hdf5",
        "--task",
        "hopper-medium-v2",
        "--out",
        str(tmp_path),
        "--variants",
        "mopo,paper/nope",
    ]
    with pytest.raises(SystemExit, match="morec_learning: error: config file .*paper/nope.yaml does not exist"):
        learning.main(args)


def test_scale_runs_the_chosen_morec_settings_on_mobile_once_chosen(tmp_path, capsys):
    scale = load_script("morec_scale")
    root = tmp_path / "scale"
    assert scale.main(["--root", str(root), "--tasks", "hopper", "--plan"]) == 0
    assert "mobile:hopper" not in capsys.readouterr().out  # nothing chosen yet
    assert scale.main(["--root", str(root), "--tasks", "hopper", "--recommended", "mopo_morec_stop", "--plan"]) == 0
    names = [line.split()[1] for line in capsys.readouterr().out.splitlines()]
    assert names[-1] == "mobile:hopper"  # after every MOPO job
    config = (root / "configs" / "d4rl" / "hopper-medium-v2" / "mobile_morec_stop.yaml").read_text()
    assert "algorithm: mobile" in config and "truncate_as: stop" in config
    with pytest.raises(SystemExit, match="--recommended mopo: MOPO without MOREC has no MOBILE"):
        scale.main(["--root", str(root), "--tasks", "hopper", "--recommended", "mopo", "--plan"])


def fake_learning_runs(
    root: Path, task: str, variant: str, scores: list[float], wall: float = 20.0, level: str = "medium"
) -> None:
    """Finished runs (seeds 0, 1, ...) of ``variant`` on ``task``'s medium-1M (or the replay job's
    medium-replay), as morec_scale leaves them."""
    job = "learn" if level == "medium" else "replay"
    for seed, score in enumerate(scores):
        run_dir = root / job / task / "runs" / f"{task}-{level}-v2" / variant / f"seed{seed}"
        run_dir.mkdir(parents=True)
        summary = {
            "last_score": score,
            "last10_mean_score": score,
            "wall_seconds": wall * 200,
            "gradient_steps": 200_000,
        }
        (run_dir / "summary.json").write_text(json.dumps(summary))


def test_the_rule_chooses_the_best_worst_case_gain_and_breaks_ties_by_cost(tmp_path):
    rule = load_script("morec_rule")
    for task in ("hopper", "halfcheetah"):
        fake_learning_runs(tmp_path, task, "mopo", [30.0, 32.0, 34.0])
        fake_learning_runs(tmp_path, task, "mopo_morec_paper", [60.0, 60.0, 60.0])  # excluded by medium-replay
    fake_learning_runs(tmp_path, "hopper", "mopo_morec_stop", [35.0, 37.0, 39.0], wall=15.0)  # +5 on hopper
    fake_learning_runs(tmp_path, "halfcheetah", "mopo_morec_stop", [33.0, 35.0, 37.0], wall=15.0)  # +3: worst 3
    fake_learning_runs(tmp_path, "hopper", "mopo_morec_auto_stop", [42.0, 42.0, 42.0], wall=30.0)  # +10
    fake_learning_runs(tmp_path, "halfcheetah", "mopo_morec_auto_stop", [35.5, 35.5, 35.5], wall=30.0)  # +3.5
    fake_learning_runs(tmp_path, "halfcheetah", "mopo", [30.0, 32.0, 34.0], level="medium-replay")
    fake_learning_runs(
        tmp_path, "halfcheetah", "mopo_morec_stop", [29.0, 31.0, 33.0], level="medium-replay"
    )  # -1: level
    choice = rule.apply_rule(tmp_path, [0, 1, 2])
    assert choice["tied"] == ["mopo_morec_stop", "mopo_morec_auto_stop"]  # worst-case gains 3 and 3.5: within 1
    assert choice["chosen"] == "mopo_morec_stop" and choice["provisional"] is False  # the cheaper of the tie
    paper = choice["candidates"]["mopo_morec_paper"]
    assert paper["excluded_by"] and paper["worst_gain"] == pytest.approx(28.0)
    stop = choice["candidates"]["mopo_morec_stop"]
    assert stop["gains"]["halfcheetah"]["delta"] == pytest.approx(3.0)
    assert stop["gains"]["halfcheetah"]["sigma"] == pytest.approx(np.std([33.0, 35.0, 37.0]))
    assert choice["helps"] is True  # +5 and +3, both above sigma (1.63)
    assert choice["confirmation"] is None  # no Walker2d runs yet
    assert rule.paper_deviations("mopo_morec_stop_paper_lambda") == 1 and rule.paper_deviations("mopo_morec_stop") == 2
    # had it lost on medium-replay by more than sigma (1.63) over every seed, the tie's other one is chosen
    shutil.rmtree(tmp_path / "replay" / "halfcheetah" / "runs" / "halfcheetah-medium-replay-v2" / "mopo_morec_stop")
    fake_learning_runs(tmp_path, "halfcheetah", "mopo_morec_stop", [27.0, 29.0, 31.0], level="medium-replay")  # -3
    choice = rule.apply_rule(tmp_path, [0, 1, 2])
    assert "lost to MOPO on halfcheetah medium-replay" in choice["candidates"]["mopo_morec_stop"]["excluded_by"]
    assert choice["chosen"] == "mopo_morec_auto_stop" and choice["provisional"] is False


def test_the_rule_is_provisional_and_names_the_shortfall_while_seeds_are_missing(tmp_path):
    rule = load_script("morec_rule")
    for task, score in (("hopper", 29.0), ("halfcheetah", 31.0)):
        fake_learning_runs(tmp_path, task, "mopo", [30.0, 32.0, 34.0])
        fake_learning_runs(tmp_path, task, "mopo_morec_stop", [score])  # one seed only: compared on seed 0
    fake_learning_runs(tmp_path, "walker2d", "mopo", [20.0, 20.0])
    fake_learning_runs(tmp_path, "walker2d", "mopo_morec_stop", [10.0, 10.0])
    choice = rule.apply_rule(tmp_path, [0, 1, 2])
    assert choice["provisional"] and choice["chosen"] == "mopo_morec_stop"
    assert "mopo_morec_stop on hopper: seeds [1, 2]" in choice["shortfall"]
    assert "mopo_morec_stop on halfcheetah medium-replay (rule 4): seeds [0, 1, 2]" in choice["shortfall"]
    assert choice["candidates"]["mopo_morec_stop"]["worst_gain"] == pytest.approx(-1.0)
    assert choice["helps"] is False  # -1 on Hopper with sigma 0 (one seed): below level
    assert choice["confirmation"]["confirmed"] is False and choice["confirmation"]["delta"] == pytest.approx(-10.0)
    with pytest.raises(SystemExit, match="^morec_rule: error: no learning runs under"):
        rule.main(["--root", str(tmp_path / "nothing")])


def test_the_rule_reads_a_variant_not_run_twice_from_the_run_that_stood_in_for_it(tmp_path):
    """morec_learning.py does not rerun a variant whose config equals an earlier one's (MOREC's λ is
    MOPO's on HalfCheetah); its table.json says which ran in its place, and the rule reads those runs."""
    rule = load_script("morec_rule")
    for task in ("hopper", "halfcheetah"):
        fake_learning_runs(tmp_path, task, "mopo", [30.0])
        fake_learning_runs(tmp_path, task, "mopo_morec_stop", [35.0])
    fake_learning_runs(tmp_path, "hopper", "mopo_morec_stop_paper_lambda", [20.0])
    table = {"same_config_as": {"mopo_morec_stop_paper_lambda": "mopo_morec_stop"}, "rows": []}
    (tmp_path / "learn" / "halfcheetah" / "table.json").write_text(json.dumps(table))
    gains = rule.apply_rule(tmp_path, [0])["candidates"]["mopo_morec_stop_paper_lambda"]["gains"]
    assert gains["halfcheetah"]["delta"] == pytest.approx(5.0)  # mopo_morec_stop's runs
    assert gains["hopper"]["delta"] == pytest.approx(-10.0)  # its own runs where it ran


def test_denormal_bench_counts_the_models_denormal_weights_and_compares_both_modes(tmp_path, capsys):
    import torch

    from morec.dynamics import EnsembleConfig, EnsembleDynamics, TaskInfo
    from tests.helpers import random_dataset_file

    torch.set_flush_denormal(False)  # an earlier test's training in this process may have left it on
    data = random_dataset_file(tmp_path / "hopper.hdf5", "Hopper-v4", steps=200)
    model = EnsembleDynamics(TaskInfo(11, 3), EnsembleConfig(hidden_sizes=(16, 16), weight_decays=(0, 0, 0)), seed=0)
    with torch.no_grad():
        next(model.parameters()).view(-1)[:5] = 1e-39  # what long weight decay leaves behind
    model.save(tmp_path / "dyn")
    bench = load_script("bench_denormals")
    argv = ["--dynamics", str(tmp_path / "dyn"), "--dataset", str(data), "--rows", "64", "--steps", "2"]
    assert bench.main([*argv, "--repeats", "1"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["denormal_weights"] == 5 and report["weights"] == sum(p.numel() for p in model.parameters())
    assert report["seconds_kept"] > 0 and report["seconds_flushed"] > 0 and isinstance(report["bit_identical"], bool)
    assert (torch.tensor([1e-39]) * 1.0).item() != 0.0  # the process is left keeping denormals, as it was


def test_trained_cost_resumes_copies_of_finished_runs_and_reports_only_the_added_epochs(hopper_file, tmp_path, capsys):
    import torch

    from morec.training.config import resolve_config
    from morec.training.pipeline import run_training
    from tests.helpers import smoke

    run = tmp_path / "run"
    sets = smoke(
        hopper_file,
        tmp_path / "cache",
        algorithm="mopo",
        **{"reward.snapshot_interval": 20, "reward.snapshot_stride": 1},
    )
    run_training(resolve_config(None, sets), run, show_progress=False)
    finished = (run / "checkpoint.pt").read_bytes()
    bench = load_script("bench_trained_cost")
    out = tmp_path / "out"
    cases = ["--case", "f32", str(run), "--case", "bf16", str(run), "filter.score_dtype=bfloat16"]
    assert bench.main(["--out", str(out), "--epochs", "1", *cases]) == 0
    report = json.loads(capsys.readouterr().out)["cases"]
    assert (run / "checkpoint.pt").read_bytes() == finished  # the finished run is only read
    for name in ("f32", "bf16"):
        rollouts = torch.load(out / name / "checkpoint.pt", weights_only=False)["rollouts"]
        assert len(rollouts) == 3  # two epochs' rollouts, then the added one's
        assert report[name]["rollout_mean_length"] == rollouts[-1]["mean_length"]
        assert report[name]["gradient_steps"] == 20
        assert json.loads((out / name / "summary.json").read_text())["epochs"] == 3
    assert report["f32"]["vs_first"] == 1.0 and report["bf16"]["overrides"] == ["filter.score_dtype=bfloat16"]
    assert resolve_config(str(out / "bf16" / "config.yaml")).filter.score_dtype == "bfloat16"


def test_trained_cost_refuses_a_run_that_did_not_finish_in_one_line(tmp_path):
    bench = load_script("bench_trained_cost")
    (tmp_path / "run").mkdir()
    with pytest.raises(SystemExit, match=r"bench_trained_cost: error: --case a: .*run is not a finished run"):
        bench.main(["--out", str(tmp_path / "out"), "--case", "a", str(tmp_path / "run")])
