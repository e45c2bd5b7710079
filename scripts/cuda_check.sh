#!/usr/bin/env bash
# The checks that need a GPU, in one go (CI has none):
#   1. the tests parametrised over devices, on cuda (same seed, same result; resume = uninterrupted run),
#   2. an end-to-end `morec train` of MOBILE+MOREC on cuda (real config, 2 short epochs),
#   3. rollout and gradient-step throughput, cuda and cpu side by side in this one run, and compiled
#      networks against eager ones (bench_train's `compiled`; on cuda the training runs compile by default).
# Each step has its own time limit, so one slow step leaves the others' results.
#
#   bash scripts/cuda_check.sh OUT_DIR [HOPPER_DATASET.hdf5]
set -u
out=${1:?usage: cuda_check.sh OUT_DIR [HOPPER_DATASET.hdf5]}
dataset=${2:-}
py=${PYTHON:-python3}
mkdir -p "$out"
export PYTHONUNBUFFERED=1

step() {  # step NAME SECONDS COMMAND...: run with a limit, say how it ended
  local name=$1 limit=$2 t0=$SECONDS rc
  shift 2
  timeout "$limit" "$@"
  rc=$?
  echo "== $name: exit $rc after $((SECONDS - t0)) s" >&2
}

{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  "$py" -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.cuda.is_available())"
  nproc
} > "$out/machine.txt" 2>&1

step pytest 300 "$py" -m pytest -q -p no:cacheprovider -k cuda tests > "$out/pytest_cuda.log" 2>&1

if [ -n "$dataset" ]; then
  run_dir=$(mktemp -d)/run
  step train 180 "$py" -m morec.cli train --config configs/d4rl/hopper-medium-v2/mobile_morec.yaml --run-dir "$run_dir" \
    --dataset "$dataset" --no-progress --set device=cuda --set train.epochs=2 --set mobile.num_samples=5 \
    --set reward.num_updates=1000 > "$out/train_cuda.log" 2>&1
  cp "$run_dir/summary.json" "$out/train_cuda_summary.json" 2>/dev/null
fi

step bench_rollout_cuda 60 "$py" scripts/bench_rollout.py --device cuda > "$out/bench_rollout_cuda.json"
step bench_rollout_cpu 50 "$py" scripts/bench_rollout.py --device cpu --quick > "$out/bench_rollout_cpu.json"
{
  step bench_train_cuda 240 "$py" scripts/bench_train.py --device cuda --steps 200   # compiling (train.compile) included
  step bench_train_cpu 150 "$py" scripts/bench_train.py --device cpu --steps 50
} > "$out/bench_train.json"
