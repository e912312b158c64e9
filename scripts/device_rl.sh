#!/usr/bin/env bash
# The RL protocol and benchmark on a GPU machine (no network; its own torch; see benchmarks/device/*/README.md).
# Carry: .whl (gymnasium, pettingzoo, farama-notifications wheels for its Python 3.12).
# 1. the full protocol (40 runs) from nothing on the machine's 16 CPU cores (16 workers), kept as tarballs
#    (finished runs are tarred even if the time limit cuts the protocol: the rest can be finished elsewhere);
# 2. bench_rl.py --stacked on CUDA (update / stacking speed-ups, the protocol's time extrapolated on the GPU).
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; nproc; lscpu | grep -E "Model name|^CPU\(s\)";
  python3 -c "import torch, numpy; print('torch', torch.__version__, 'numpy', numpy.__version__)"; } > "$OUT/machine.txt" 2>&1
( time timeout "${PROTOCOL_TIMEOUT:-420}" python3 -m soo.rl.experiment --scale full --workers 16 --keep \
    --kept-dir /tmp/kept --out-dir /tmp/rlfull ) > "$OUT/rl_full_cpu16.log" 2>&1
tail -5 "$OUT/rl_full_cpu16.log"
tar czf "$OUT/kept_cpu16.tgz" -C /tmp kept 2>/dev/null
tar czf "$OUT/runs_cpu16.tgz" --exclude=resume.pt -C /tmp rlfull 2>/dev/null
timeout "${BENCH_TIMEOUT:-120}" python3 benchmarks/bench_rl.py --stacked --device cuda > "$OUT/bench_rl_cuda.log" 2>&1
tail -4 "$OUT/bench_rl_cuda.log"
ls -la "$OUT"
