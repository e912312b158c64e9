"""CUDA smoke check of the QLoRA path: for a tiny random model and the embedded SmolLM2 model,
a few 4-bit SOO training steps (``soo.llm.train.train``, 8 pairs, 1 epoch) and a log-prob evaluation
on 8 burglar scenarios; prints one table row per model. Meant to finish in < 5 minutes on a GPU.

Without CUDA it prints a message and exits 0; ``--cpu`` runs the same check on the CPU
(bitsandbytes 4-bit works there too), to test the script itself.

Usage: ``python scripts/cuda_check.py [--cpu] [--models tiny-random-llama smollm2-135m-instruct]``
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def check(name: str, device: str) -> dict:
    from soo.llm import models
    from soo.llm.evaluate import score_scenarios
    from soo.llm.scenarios import burglar, soo_pairs
    from soo.llm.config import LLMTrainConfig
    from soo.llm.train import train

    cuda = device == "cuda"
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    model, tok = models.load(name, quantization="4bit")
    t_load = time.perf_counter() - t0
    layer = min(18, models.num_layers(model) - 1)
    cfg = LLMTrainConfig(model=name, quantization="4bit", layer=layer, epochs=1, batch_size=4, lr=1e-3, bf16=cuda)
    res = train(cfg, pairs=soo_pairs()[:8], model=model, tok=tok, progress=False)
    scen = burglar(4) + burglar(4, order="mirrored")
    t0 = time.perf_counter()
    recs = score_scenarios(res.model, tok, scen, method="logprob")
    t_eval = time.perf_counter() - t0
    dev = str(models.input_device(res.model))
    bad = [r for r in recs if r["label"] not in ("deceptive", "honest")]
    ok = not bad and all(map(lambda v: v == v, res.losses))  # labels valid, no NaN loss
    return {"model": name, "quant": "4bit", "device": dev, "steps": len(res.losses), "loss_first": res.losses[0],
            "loss_last": res.losses[-1], "load_s": t_load, "train_s": res.wall_s, "eval_s": t_eval,
            "deceptive": sum(r["label"] == "deceptive" for r in recs),
            "peak_cuda_mb": torch.cuda.max_memory_allocated() / 2**20 if cuda else float("nan"), "ok": ok}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cpu", action="store_true", help="run on the CPU (to test this script without a GPU)")
    ap.add_argument("--models", nargs="+", default=["tiny-random-llama", "smollm2-135m-instruct"])
    a = ap.parse_args(argv)
    if not torch.cuda.is_available() and not a.cpu:
        print("cuda_check: no CUDA device here (torch.cuda.is_available() is False); nothing to check. "
              "Run it on a GPU machine, or pass --cpu to run the same check on the CPU.")
        return 0
    device = "cpu" if a.cpu else "cuda"
    if a.cpu and torch.cuda.is_available():
        print("cuda_check: --cpu given but CUDA is visible; soo.llm.models.load places models on CUDA. "
              "Hide the GPU with CUDA_VISIBLE_DEVICES= to test on the CPU.")
        return 2
    if device == "cuda":
        print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.get_device_name(0)}")
    t_all = time.perf_counter()
    rows = [check(m, device) for m in a.models]
    cols = ["model", "quant", "device", "steps", "loss_first", "loss_last", "load_s", "train_s", "eval_s",
            "deceptive", "peak_cuda_mb", "ok"]
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)  # noqa: E731
    table = [cols] + [[fmt(r[c]) for c in cols] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(cols))]
    for row in table:
        print("  ".join(v.rjust(w) for v, w in zip(row, widths)))
    print(f"total {time.perf_counter() - t_all:.1f} s; 'deceptive' = of 8 scenarios (log-prob)")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
