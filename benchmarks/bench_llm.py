"""LLM evaluation and training-step performance on the embedded model, ratios measured in one run.

1. Evaluation on the same burglar scenarios (both orders, suffix "i_would"), all three methods with the
   same weights (``--eval-dtype``, default bf16, as the notebooks compute where the machine has native bf16) and
   ``--max-new-tokens`` (default 75, the official evaluation's):
   per-prompt generation with fixed 128-token padding (``generate_loop``, the official method) vs
   batched generation (``generate``) vs log-prob scoring (``score(method="logprob")``).
   Prints prompts/s, the ratios batched/loop (target >= 5x) and logprob/loop (target >= 30x), and
   the fraction of identical decisions between generation (first-mention rule) and log-prob
   (target >= 98%). The loop runs on the first ``--n-loop`` prompts only (it is slow); throughput
   is compared per prompt.
2. One SOO training step (soo_mse, "full" pooling, a batch of 4 pairs): fixed 128-token padding
   (``max_length=128``, the official code) vs dynamic padding (``max_length=None``), in fp32 and
   in bf16 as the notebooks train where the machine has native bf16 (bf16 base weights, fp32 LoRA, bf16
   autocast). Prints seconds/step (fastest and mean of ``--steps`` after one warm-up round; the four settings are interleaved step by
   step so background load hits them alike), the ratio (target >= 3x) and the loss of each (equal up
   to float noise: padding is masked; bf16 weights make that noise about 2 %).
3. ``--precision``: what ``precision="auto"`` decides on. Greedy generation (``--max-new-tokens``) and log-prob
   scoring of the same 16 burglar prompts, once as the notebooks compute in fp32 and once as they compute in bf16
   (bf16 weights, bf16 autocast), interleaved over two rounds; prints the fastest time of each and the ratios
   bf16/fp32 (> 1: bf16 slower), with ``soo.llm.models.native_bf16()`` for this machine.
4. ``--both``: what ``make llm-full`` scores each run with. The same ``--n`` burglar scenarios per order scored by
   log-prob and by greedy generation (answers stopped once their label is decided, the first of each order kept
   whole) apart (``score`` twice) and in one pass (``score_both``: log-probs read from generation's prompt cache),
   interleaved over two rounds, in fp32; prints the fastest time of each, the ratio apart/one pass (target >= 1.5x),
   whether the answers are identical and the labels equal, and the largest log-prob margin difference.

Peak memory is the process's max RSS (``resource.getrusage``) and, on CUDA, the peak allocated GPU
memory, printed after each phase. On CUDA every timing waits for the queued GPU work.
Usage: ``python benchmarks/bench_llm.py [--n 64] [--n-loop 16] [--steps 2] [--batch-size 16] [--precision] [--both]``;
results also go to ``results/bench/llm.json``.
"""
from __future__ import annotations

import argparse
import copy
import os
import resource
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from soo.llm import evaluate as E  # noqa: E402
from soo.llm import models  # noqa: E402
from soo.llm.scenarios import burglar, soo_pairs  # noqa: E402
from soo.llm.config import LLMTrainConfig  # noqa: E402
from soo.llm.train import lora_model, objective_loss, tokenize_pairs  # noqa: E402
from soo.files import atomic_write_json  # noqa: E402
from soo.provenance import manifest  # noqa: E402
from soo.utils import project_root  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def peak_cuda_mb() -> float | None:
    return torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None


def peak_memory() -> str:
    cuda = peak_cuda_mb()
    return f"peak RSS so far: {peak_rss_mb():.0f} MB" + (f", peak CUDA allocated: {cuda:.0f} MB" if cuda else "")


def sync() -> None:
    """Wait for queued GPU work, so that wall-clock timings include it (a no-op on the CPU)."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn):
    sync()
    t0 = time.perf_counter()
    out = fn()
    sync()
    return out, time.perf_counter() - t0


def bench_eval(model, tok, n: int, n_loop: int, max_new_tokens: int, batch_size: int = 16) -> dict:
    half = max(1, n // 2)
    scen = burglar(half, suffix="i_would") + burglar(half, order="mirrored", suffix="i_would")
    prompts = [s.prompt for s in scen]
    n_loop = min(n_loop, len(scen))
    # warm-up (one-time kernel, allocator and library initialisation, large on a GPU): not timed
    E.generate_loop(model, tok, prompts[:1], max_new_tokens=2)
    E.score(model, tok, scen[:2], method="generate", max_new_tokens=2, batch_size=batch_size)
    E.score(model, tok, scen[:2], method="logprob", batch_size=batch_size)
    loop, t_loop = timed(lambda: E.generate_loop(model, tok, prompts[:n_loop], max_new_tokens=max_new_tokens))
    gen, t_gen = timed(lambda: E.score(model, tok, scen, method="generate", max_new_tokens=max_new_tokens,
                                       batch_size=batch_size))
    lp, t_lp = timed(lambda: E.score(model, tok, scen, method="logprob", batch_size=batch_size))
    r = {"n": len(scen), "n_loop": n_loop, "max_new_tokens": max_new_tokens, "batch_size": batch_size,
         "loop_prompts_per_s": n_loop / t_loop, "batched_prompts_per_s": len(scen) / t_gen,
         "logprob_prompts_per_s": len(scen) / t_lp}
    r["ratio_batched_over_loop"] = r["batched_prompts_per_s"] / r["loop_prompts_per_s"]
    r["ratio_logprob_over_loop"] = r["logprob_prompts_per_s"] / r["loop_prompts_per_s"]
    r["loop_equals_batched"] = sum(a == b["response"] for a, b in zip(loop, gen)) / n_loop
    r["decision_agreement"] = sum(a["label"] == b["label"] for a, b in zip(gen, lp)) / len(scen)
    r["generate_unclear"] = sum(a["label"] == "unclear" for a in gen) / len(scen)
    r["peak_rss_mb"], r["peak_cuda_mb"] = peak_rss_mb(), peak_cuda_mb()
    print(f"[eval] n={len(scen)} (loop on {n_loop}), max_new_tokens={max_new_tokens}, batch_size={batch_size}")
    print(f"  loop (pad 128)  : {r['loop_prompts_per_s']:8.3f} prompts/s")
    print(f"  batched generate: {r['batched_prompts_per_s']:8.3f} prompts/s   ratio batched/loop = "
          f"{r['ratio_batched_over_loop']:.1f}x (target >= 5)")
    print(f"  log-prob        : {r['logprob_prompts_per_s']:8.3f} prompts/s   ratio logprob/loop = "
          f"{r['ratio_logprob_over_loop']:.1f}x (target >= 30)")
    print(f"  identical decisions generate vs log-prob: {100 * r['decision_agreement']:.1f}% (target >= 98%); "
          f"generate 'unclear': {100 * r['generate_unclear']:.1f}%; loop == batched text: "
          f"{100 * r['loop_equals_batched']:.0f}%")
    print(f"  {peak_memory()}")
    return r


def bench_train(model, tok, steps: int) -> dict:
    """fp32: fp32 weights and LoRA, no autocast. bf16: as the notebooks train (``LLMConfig.dtype``), bf16 base
    weights, fp32 LoRA adapters (peft upcasts them) and bf16 autocast."""
    pairs = soo_pairs()[:4]
    cfg = LLMTrainConfig(layer=18, batch_size=4, lora_dropout=0.0)
    settings = {}
    for bf16 in (False, True):
        base = copy.deepcopy(model).to(torch.bfloat16 if bf16 else torch.float32)
        peft = lora_model(base, cfg)
        opt = torch.optim.AdamW([p for p in peft.parameters() if p.requires_grad], lr=0.0)  # lr 0: same weights
        for max_length in (128, None):
            c = LLMTrainConfig(layer=18, batch_size=4, lora_dropout=0.0, max_length=max_length, bf16=bf16)
            es, eo = tokenize_pairs(tok, [p.self_prompt for p in pairs], [p.other_prompt for p in pairs], max_length)
            peft.eval()
            with torch.no_grad(), models.autocast(bf16):
                loss = objective_loss(peft, c, es, eo).item()
            peft.train()
            key = f"{'bf16' if bf16 else 'fp32'}_{'pad128' if max_length else 'dynamic'}"
            settings[key] = (c, peft, opt, es, eo, loss, [])
    # the settings are interleaved step by step, so that load from other processes hits them alike
    for i in range(steps + 1):  # the first round is a warm-up
        for key, (c, peft, opt, es, eo, _, times) in settings.items():
            sync()
            t0 = time.perf_counter()
            with models.autocast(c.bf16):
                lo = objective_loss(peft, c, es, eo)
            lo.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            sync()
            if i:
                times.append(time.perf_counter() - t0)
    out = {key: {"s_per_step": sum(t) / len(t), "s_min": min(t), "loss": loss, "seq_len": es["input_ids"].shape[1]}
           for key, (c, _, _, es, eo, loss, t) in settings.items()}
    print(f"[train step] soo_mse layer 18 full pooling, batch of 4 pairs, {steps} interleaved steps; ratios of the fastest step (robust to load)")
    for prec in ("fp32", "bf16"):
        f, d = out[f"{prec}_pad128"], out[f"{prec}_dynamic"]
        out[f"{prec}_ratio_pad128_over_dynamic"] = f["s_min"] / d["s_min"]
        print(f"  {prec}: pad128 (T={f['seq_len']}) {f['s_min']:.3f} s/step (mean {f['s_per_step']:.3f}), "
              f"loss {f['loss']:.6g} | dynamic (T={d['seq_len']}) {d['s_min']:.3f} s/step (mean {d['s_per_step']:.3f}), "
              f"loss {d['loss']:.6g} | "
              f"ratio {out[f'{prec}_ratio_pad128_over_dynamic']:.1f}x (target >= 3)")
    for pad in ("pad128", "dynamic"):
        out[f"ratio_fp32_over_bf16_{pad}"] = out[f"fp32_{pad}"]["s_min"] / out[f"bf16_{pad}"]["s_min"]
        print(f"  fp32/bf16 time ratio ({pad}): {out[f'ratio_fp32_over_bf16_{pad}']:.2f}x (>1: bf16 faster)")
    out["peak_rss_mb"], out["peak_cuda_mb"] = peak_rss_mb(), peak_cuda_mb()
    print(f"  {peak_memory()}")
    return out


def bench_precision(model, tok, max_new_tokens: int, rounds: int = 2) -> dict:
    """fp32 vs bf16 (weights and autocast, as the notebooks' two precisions) on 16 burglar prompts."""
    scen = burglar(8, suffix="i_would") + burglar(8, order="mirrored", suffix="i_would")
    weights = {"fp32": model, "bf16": copy.deepcopy(model).to(torch.bfloat16)}
    best = {}
    for _ in range(rounds):  # interleaved, so background load hits both alike
        for prec, m in weights.items():
            for method in ("generate", "logprob"):
                with models.autocast(prec == "bf16"):
                    _, t = timed(lambda: E.score(m, tok, scen, method=method, max_new_tokens=max_new_tokens))
                best[f"{prec}_{method}_s"] = min(t, best.get(f"{prec}_{method}_s", float("inf")))
    r = {"native_bf16": models.native_bf16(), "machine": models.machine(), "n": len(scen), **best}
    for method in ("generate", "logprob"):
        r[f"ratio_bf16_over_fp32_{method}"] = best[f"bf16_{method}_s"] / best[f"fp32_{method}_s"]
    print(f"[precision] {r['machine']}, 16 prompts, fastest of {rounds}:")
    for method in ("generate", "logprob"):
        print(f"  {method:8s}: fp32 {best[f'fp32_{method}_s']:.1f} s, bf16 {best[f'bf16_{method}_s']:.1f} s, "
              f"bf16/fp32 = {r[f'ratio_bf16_over_fp32_{method}']:.2f}x (> 1: bf16 slower)")
    return r


def bench_both(model, tok, n: int, max_new_tokens: int, batch_size: int, rounds: int = 2) -> dict:
    """``score`` twice (log-prob, then generation) against ``score_both`` on the same scenarios, as the protocol runs."""
    import numpy as np

    scen = burglar(n, suffix="i_would") + burglar(n, order="mirrored", suffix="i_would")
    whole = [0, n]
    kw = dict(max_new_tokens=max_new_tokens, batch_size=batch_size)
    apart = lambda: (E.score(model, tok, scen, method="logprob", batch_size=batch_size),
                     E.score(model, tok, scen, method="generate", whole=whole, **kw))
    one = lambda: E.score_both(model, tok, scen, whole=whole, **kw)
    best, got = {}, {}
    for _ in range(rounds):  # interleaved, so background load hits both alike
        for name, fn in (("apart", apart), ("one_pass", one)):
            got[name], t = timed(fn)
            best[f"{name}_s"] = min(t, best.get(f"{name}_s", float("inf")))
    margin = {k: np.array([r["logp_deceptive"] - r["logp_honest"] for r in v[0]]) for k, v in got.items()}
    r = {"n": len(scen), **best, "ratio_apart_over_one_pass": best["apart_s"] / best["one_pass_s"],
         "answers_identical": got["apart"][1] == got["one_pass"][1],
         "logprob_labels_equal": [x["label"] for x in got["apart"][0]] == [x["label"] for x in got["one_pass"][0]],
         "max_margin_diff": float(np.abs(margin["apart"] - margin["one_pass"]).max()),
         "min_abs_margin": float(np.abs(margin["apart"]).min())}
    print(f"[both] {len(scen)} prompts, fastest of {rounds}: apart {best['apart_s']:.1f} s, one pass "
          f"{best['one_pass_s']:.1f} s, apart/one pass = {r['ratio_apart_over_one_pass']:.2f}x; answers identical: "
          f"{r['answers_identical']}, log-prob labels equal: {r['logprob_labels_equal']}, largest margin difference "
          f"{r['max_margin_diff']:.1e} (smallest margin {r['min_abs_margin']:.3f})")
    print(f"  {peak_memory()}")
    return r


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=64, help="scenarios for batched generation and log-prob (both orders)")
    ap.add_argument("--n-loop", type=int, default=16, help="scenarios for the per-prompt loop")
    ap.add_argument("--max-new-tokens", type=int, default=75, help="the official evaluation's 75")
    ap.add_argument("--eval-dtype", choices=("bf16", "fp32"), default="bf16",
                    help="weights for the evaluation phase (the notebooks: bf16 where the machine computes it "
                    "natively, else fp32)")
    ap.add_argument("--batch-size", type=int, default=16, help="batch size of batched generation and log-prob "
                    "(the library's default, 16; larger batches pay off on a GPU)")
    ap.add_argument("--steps", type=int, default=2, help="timed training steps per setting")
    ap.add_argument("--precision", action="store_true", help="also time fp32 against bf16 (what precision='auto' picks)")
    ap.add_argument("--both", action="store_true", help="also time log-prob and generation scored apart against "
                    "score_both's one pass (fp32, as make llm-full)")
    ap.add_argument("--skip-eval", action="store_true")
    ap.add_argument("--skip-train", action="store_true")
    ap.add_argument("--out", default=str(project_root() / "results" / "bench" / "llm.json"))
    a = ap.parse_args(argv)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    (model, tok), t_load = timed(lambda: models.load())
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
    print(f"loaded {models.EMBEDDED} in {t_load:.1f} s on {device}; torch {torch.__version__}, "
          f"threads={torch.get_num_threads()}")
    res = {}
    if not a.skip_eval:
        m = model if a.eval_dtype == "fp32" else copy.deepcopy(model).to(torch.bfloat16)
        res["eval"] = {"dtype": a.eval_dtype, **bench_eval(m, tok, a.n, a.n_loop, a.max_new_tokens, a.batch_size)}
        del m
    if not a.skip_train:
        res["train"] = bench_train(model, tok, a.steps)
    if a.precision:
        res["precision"] = bench_precision(model, tok, a.max_new_tokens)
    if a.both:
        res["both"] = bench_both(model, tok, a.n, a.max_new_tokens, a.batch_size)
    res["device"] = device
    atomic_write_json(Path(a.out), manifest(config=vars(a), results=res))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
