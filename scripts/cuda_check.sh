#!/usr/bin/env bash
# The checks that need a GPU, in one go (CI has none), most important first, each with its own time
# limit so that one slow step leaves the others' results:
#   1. the CUDA-graph update's own tests and the stacked learner's (same seed, same result; close to
#      eager steps),
#   2. bench_train on cuda: eager steps against the step replayed as one CUDA graph, with eager and
#      with compiled networks inside the graph (`cuda_graph`), MOPO, MOBILE and MOBILE with a bfloat16
#      penalty; and 8 seeds as one stacked learner against 8 learners stepped in turn (`stacked_seeds`),
#   3. an end-to-end `morec train` of MOBILE + MOREC on cuda, train.compile auto (the graph) and off,
#      gradient steps/s of the training loop itself (rollouts included, from its TensorBoard scalars),
#      4 epochs with the published evaluation schedule, evaluating in a background process and in the
#      trainer (train.evaluate_in_background on / off: wall seconds), and 8 seeds in one process
#      (`--seeds`, train.stack_seeds on and off), their steps/s added up,
#   4. the other tests parametrised over devices, on cuda (resume = uninterrupted run, now with the graph;
#      seeds in one process = separate runs),
#   5. how many runs should share the GPU, each replaying its update as a graph: N processes against
#      N learners in one process (`--seeds`),
#   6. rollout throughput and the rest of bench_train (compiled networks alone, the penalty's precision,
#      the evaluation loop, how much of an evaluation the background process hides).
#
#   bash scripts/cuda_check.sh OUT_DIR [HOPPER_DATASET.hdf5 [MODEL_CACHE_DIR]]
# DEADLINE_S (default 540): steps that would end after it are cut short or skipped, so that a lease's
# last minutes still return the results so far. STEPS (default: all): the names of the steps to run.
# MODEL_CACHE_DIR: a `cache_dir` holding the dataset's trained ensemble and dynamics reward, so the
# end-to-end runs spend the GPU's time on the learner rather than on training the models again.
set -u
out=${1:?usage: cuda_check.sh OUT_DIR [HOPPER_DATASET.hdf5 [MODEL_CACHE_DIR]]}
dataset=${2:-}
cache=${3:-}
py=${PYTHON:-python3}
deadline=${DEADLINE_S:-540}
mkdir -p "$out"
export PYTHONUNBUFFERED=1

step() {  # step NAME SECONDS COMMAND...: run with a limit (and within the deadline), say how it ended
  local name=$1 limit=$2 t0=$SECONDS rc
  shift 2
  if [ -n "${STEPS:-}" ] && [[ " $STEPS " != *" $name "* ]]; then return; fi
  (( limit > deadline - SECONDS )) && limit=$((deadline - SECONDS))
  if (( limit < 10 )); then echo "== $name: skipped (deadline)" >&2; return; fi
  timeout "$limit" "$@"
  rc=$?
  echo "== $name: exit $rc after $((SECONDS - t0)) s" >&2
}

loop_speed() {  # loop_speed RUN_DIR...: each run's gradient steps/s in its training loop after its first epoch
  # (compiling, capturing), the mean of its logging windows, and their sum over the runs
  "$py" - "$@" <<'EOF'
import json, sys, yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
runs = {}
for run in sys.argv[1:]:
    first_epoch = yaml.safe_load(open(run + "/config.yaml"))["train"]["steps_per_epoch"]
    events = EventAccumulator(run + "/tb").Reload()
    rates = [e.value for e in events.Scalars("perf/gradient_steps_per_s") if e.step > first_epoch]
    runs[run] = round(sum(rates) / max(len(rates), 1), 1)
print(json.dumps({"steps_per_s_after_epoch_1": runs, "sum_steps_per_s": round(sum(runs.values()), 1)}))
EOF
}

{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  "$py" -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.cuda.is_available())"
  nproc
} > "$out/machine.txt" 2>&1

step test_cuda_graph 120 "$py" -m pytest -q -p no:cacheprovider tests/test_cuda_graph.py tests/test_stacked_learner.py \
  > "$out/pytest_cuda_graph.log" 2>&1
step bench_train_graph 200 "$py" scripts/bench_train.py --device cuda --steps 400 --only cuda_graph,stacked_seeds > "$out/bench_train_graph.json"

if [ -n "$dataset" ]; then
  base=$(mktemp -d)
  sets=(--set device=cuda --set train.epochs=3 --set train.eval_every=3 --set train.eval_episodes=1 --set model_seed=0
        --set dynamics.max_epochs=200 --set reward.num_updates=10000 --set reward.snapshot_stride=10)
  [ -n "$cache" ] && sets+=(--set "cache_dir=$cache")
  config=configs/d4rl/hopper-medium-replay-v2/mobile_morec.yaml
  for mode in auto off; do
    step "train_compile_$mode" $([ $mode = auto ] && echo 120 || echo 60) "$py" -m morec.cli train --config $config \
      --run-dir "$base/$mode" --dataset "$dataset" --no-progress "${sets[@]}" --set "train.compile=$mode" > "$out/train_$mode.log" 2>&1
    loop_speed "$base/$mode" > "$out/train_${mode}_speed.json" 2>> "$out/train_$mode.log"
  done
  for mode in on off; do  # the published schedule, 10 episodes after every epoch: evaluation in a process beside the learner, or in it
    step "train_evaluation_$mode" 120 "$py" -m morec.cli train --config $config --run-dir "$base/eval_$mode" --dataset "$dataset" \
      --no-progress "${sets[@]}" --set train.epochs=4 --set train.eval_every=1 --set train.eval_episodes=10 \
      --set "train.evaluate_in_background=$mode" > "$out/train_evaluation_$mode.log" 2>&1
    "$py" -c "import json, sys; s = json.load(open(sys.argv[1])); print(json.dumps({k: s[k] for k in ('epochs', 'wall_seconds_this_session')}))" \
      "$base/eval_$mode/summary.json" > "$out/train_evaluation_$mode.json" 2>> "$out/train_evaluation_$mode.log"
  done
  for mode in on off; do
    step "train_8_seeds_stack_$mode" 150 "$py" -m morec.cli train --config $config --run-dir "$base/seeds_$mode" --dataset "$dataset" \
      --no-progress "${sets[@]}" --seeds 0,1,2,3,4,5,6,7 --set "train.stack_seeds=$mode" > "$out/train_seeds_$mode.log" 2>&1
    loop_speed "$base/seeds_$mode"/seed* > "$out/train_seeds_${mode}_speed.json" 2>> "$out/train_seeds_$mode.log"
  done
fi

step pytest_cuda 150 "$py" -m pytest -q -p no:cacheprovider -k cuda tests --deselect tests/test_cuda_graph.py \
  --deselect tests/test_stacked_learner.py > "$out/pytest_cuda.log" 2>&1
step shared_device 170 "$py" scripts/bench_shared_device.py --device cuda --runs 1,8 --seconds 10 --cuda-graph --in-process \
  > "$out/shared_device_graph.json"
step bench_rollout_cuda 40 "$py" scripts/bench_rollout.py --device cuda > "$out/bench_rollout_cuda.json"
step bench_train_rest 120 "$py" scripts/bench_train.py --device cuda --steps 200 --only mopo,mobile_5_elites_x_10_samples,penalty_dtype,compiled,evaluation,background_evaluation \
  > "$out/bench_train_rest.json"
