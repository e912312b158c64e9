#!/usr/bin/env bash
# The RL part of issue #11 on a lent GPU machine (no network; its own torch; see benchmarks/device/*/README.md).
# Carry: .whl (gymnasium, pettingzoo, farama-notifications wheels for its Python 3.12).
# 1. bench_rl.py --stacked on CUDA (update / stacking speed-ups, the protocol's time extrapolated on the GPU);
# 2. the full protocol (40 runs) from nothing on the machine's CPU cores (16 workers), kept as a tarball.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; nproc; lscpu | grep -E "Model name|^CPU\(s\)";
  python3 -c "import torch, numpy; print('torch', torch.__version__, 'numpy', numpy.__version__)"; git log -1 --format=%H; } \
  > "$OUT/machine.txt" 2>&1
timeout 150 python3 benchmarks/bench_rl.py --stacked --device cuda 2>&1 | tee "$OUT/bench_rl_cuda.log"
cp results/bench/rl_stacked_cuda.json "$OUT/" 2>/dev/null
( time timeout "${PROTOCOL_TIMEOUT:-400}" python3 -m soo.rl.experiment --scale full --workers 16 --keep \
    --kept-dir /tmp/kept --out-dir /tmp/rlfull ) 2>&1 | tee "$OUT/rl_full_cpu16.log"
tar czf "$OUT/kept_cpu16.tgz" -C /tmp kept 2>/dev/null
ls -la "$OUT"
