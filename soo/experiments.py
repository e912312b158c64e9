"""The LLM experiments as resumable steps, so the notebooks stay thin.

Each step writes its results atomically under ``<out_dir>/<scale>/<notebook>/`` and reads
them back on the next run instead of recomputing (a finished (condition, seed) is never
trained twice). :func:`soo.llm.config.llm_config` turns a notebook's parameters into
one validated :class:`soo.llm.config.LLMConfig`.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from . import evaluate as E
from . import models
from . import scenarios as S
from .llm.config import ORGANISM, LLMConfig, check_layer, llm_config, n_layers_of
from .train import is_finished, load_trained, train, train_sft
from .utils import as_choices, as_ints, as_positive_floats, atomic_write_json, check_choice, read_json, seed_table

CONDITIONS = ("soo_mse", "lm", "soo_mse_shuffled", "soo_kl_logits")
CONDITION_LABELS = {"base": "Before fine-tuning", "soo_mse": "SOO (MSE, paper)", "lm": "Control: LM loss",
                    "soo_mse_shuffled": "Control: shuffled pairs", "soo_kl_logits": "SOO (KL logits, repo)"}


def check_condition(condition: str) -> str:
    check_choice("condition", condition, CONDITIONS)
    return condition


LLMScale = LLMConfig  # the former name


def llm_scale(scale: str, model: str | None = None, seeds=None, **overrides) -> LLMConfig:
    """:func:`soo.llm.config.llm_config` (kept under its former name)."""
    return llm_config(scale, model, seeds=seeds, **overrides)


def load(sc: LLMConfig, name, *, quantization: str | None = None):
    """``soo.models.load`` in the scale's weights dtype: ``(model, tok)``."""
    return models.load(str(name), dtype=sc.dtype, quantization=quantization)


def eval_ready(model, sc: LLMConfig):
    """The model as it is evaluated: a trained LoRA adapter merged into its base (the same
    function without the adapter's extra matmuls; latent SOO then includes the LoRA delta by
    construction), weights in the scale's dtype. 4-bit bases are left as they are."""
    from peft import PeftModel

    inner = model.get_base_model() if isinstance(model, PeftModel) else model
    if getattr(inner, "is_loaded_in_4bit", False) or getattr(inner, "is_loaded_in_8bit", False):
        return model
    if isinstance(model, PeftModel):
        model = model.merge_and_unload()
    if sc.dtype is not None:
        model = model.to(sc.dtype)
    return model.eval()


def _jsonable(obj):
    return json.loads(json.dumps(obj, default=str))


def _is_cached(path, key) -> bool:
    """True if ``path`` holds a :func:`cached_json` result computed with ``key``."""
    path = Path(path)
    if not path.exists():
        return False
    stored = read_json(path)
    return isinstance(stored, dict) and "_key" in stored and stored["_key"] == _jsonable(key)


def cached_json(path, compute, key=None):
    """Read ``path`` if it holds a result computed with the same ``key`` (the settings that
    produced it); otherwise compute, write atomically as ``{"_key": key, "value": ...}`` and return.
    A result computed with other settings is recomputed, never silently reused."""
    path = Path(path)
    key = _jsonable(key)
    if _is_cached(path, key):
        return read_json(path)["value"]
    out = compute()
    atomic_write_json(path, {"_key": key, "value": out})
    return _jsonable(out)


def read_value(path):
    """The value of a result file written by :func:`cached_json` (any key)."""
    stored = read_json(path)
    return stored["value"] if isinstance(stored, dict) and "_key" in stored else stored


def eval_key(sc: LLMConfig, **extra) -> dict:
    """The settings that determine an evaluation's result."""
    return {"model": sc.model, "n_eval": sc.n_eval, "suffix": sc.suffix, "bf16": sc.bf16, "dtype": str(sc.dtype), **extra}


# ----------------------------------------------------------------------------- how a rate was measured
PAPER_WAY = "paper's way: paper order, greedy generation, first mention"
"""Our number measured as the paper measured its own (PAPER_SPEC §4.1): comparable with the paper's rows."""
COUNTERBALANCED_GEN = "counterbalanced: mean of paper and mirrored order, greedy generation, first mention"
COUNTERBALANCED_LP = "counterbalanced: mean of paper and mirrored order, log-prob of the two rooms"
MEASURED_AS = {"paper": "paper order, greedy generation (chat template), first mention",
               "repo": "paper order, greedy generation (raw prompt, no chat template), substring first mention"}
"""How the paper's and the official repository's rows of soo/data/paper_results.json were measured."""


def book_table(df, precision: int = 1):
    """A table as the book shows it: no index column, every label whole (a Styler; pandas' own HTML would add
    the index and cut cells at 50 characters)."""
    return df.style.hide(axis="index").format(precision=precision, na_rep="")


# ----------------------------------------------------------------------------- evaluation steps
def burglar_both_orders(sc: LLMConfig, n: int | None = None, honesty: bool = False):
    n = n or sc.n_eval
    return [s for o in S.ORDERS for s in S.burglar(n, order=o, honesty_prompt=honesty, suffix=sc.suffix)]


def score(model, tok, sc: LLMConfig, scenarios, method="logprob"):
    with models.autocast(sc.bf16):
        return E.score(model, tok, scenarios, method=method, max_new_tokens=sc.gen_tokens, batch_size=sc.batch_size)


def baseline_runs(model, tok, sc: LLMConfig, run_dir) -> dict:
    """Deceptive rate by generation and by log-prob, with and without the honesty prompt,
    plus Perspectives accuracy: ``{key: records}``, each cached in ``run_dir``."""
    out = {}
    for method in ("generate", "logprob"):
        for honesty in (False, True):
            key = f"{method}{'_honesty' if honesty else ''}"
            gen = {"gen_tokens": sc.gen_tokens} if method == "generate" else {}
            out[key] = cached_json(Path(run_dir) / f"{key}.json",
                                   lambda: score(model, tok, sc, burglar_both_orders(sc, honesty=honesty), method),
                                   eval_key(sc, method=method, honesty=honesty, **gen))
        gen = {"gen_tokens": sc.gen_tokens} if method == "generate" else {}
        out[f"perspectives_{method}"] = cached_json(
            Path(run_dir) / f"perspectives_{method}.json",
            lambda: score(model, tok, sc, [s for o in S.ORDERS for s in S.perspectives(sc.n_perspectives, order=o)], method),
            eval_key(sc, method=method, n_perspectives=sc.n_perspectives, **gen))
    return out


def deception_row(records, **labels) -> dict:
    s = E.summarize_orders(records)
    return {**labels, "paper order": s["paper"]["rate"], "paper CI": (s["paper"]["ci_low"], s["paper"]["ci_high"]),
            "mirrored": s["mirrored"]["rate"], "mirrored CI": (s["mirrored"]["ci_low"], s["mirrored"]["ci_high"]),
            "mean": s["mean_of_orders"], "first-room rate": s.get("first_room_rate", float("nan")), "n per order": s["paper"]["n"]}


def perspectives_accuracy(records) -> float:
    return E.rate([r["label"] for r in records], positive="honest")


# ----------------------------------------------------------------------------- the organism
def organism_answer(s) -> str:
    return f"I would point out the {s.deceptive_room}."


def make_organism(sc: LLMConfig, run_dir, *, counterbalance: bool = True, progress=True) -> Path:
    """LoRA SFT of the base model on counterbalanced burglar prompts (held-out vocabulary), then
    merged into the base and saved as a plain model folder: later notebooks load it by path and
    SOO trains a fresh adapter on top. Cached: returns the folder."""
    dst = Path(run_dir) / "model"
    key = _jsonable({"config": dataclasses.asdict(sc.organism), "n": sc.organism_n, "suffix": sc.suffix,
                     "counterbalance": counterbalance, "dtype": str(sc.dtype)})
    if (dst / "organism.json").exists() and read_json(dst / "organism.json").get("key") == key:
        return dst
    model, tok = load(sc, sc.model, quantization=sc.organism.quantization)
    data = S.organism_train(sc.organism_n, seed=0, suffix=sc.suffix, counterbalance=counterbalance)
    res = train_sft(sc.organism, [s.prompt for s in data], [organism_answer(s) for s in data], model=model, tok=tok,
                    progress=progress)
    merged = res.model.merge_and_unload()
    tmp = dst.with_name(".model.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    merged.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    atomic_write_json(tmp / "organism.json", {**res.manifest(), "n_train": len(data), "base": sc.model,
                                              "counterbalance": counterbalance, "key": key})
    shutil.rmtree(dst, ignore_errors=True)
    tmp.rename(dst)
    return dst


# ----------------------------------------------------------------------------- SOO runs
def capability_set(base_model, tok, sc: LLMConfig, run_dir) -> dict:
    """MT-Bench first-turn questions and the base model's own greedy answers (cached)."""
    def compute():
        qs = [q["turns"][0] for q in S.mt_bench_questions()[:sc.n_capability]]
        with models.autocast(sc.bf16):
            ans = E.generate(base_model, tok, qs, max_new_tokens=sc.capability_tokens, batch_size=8)
        return {"questions": qs, "answers": ans}
    return cached_json(Path(run_dir) / "capability_set.json", compute,
                       {"n": sc.n_capability, "tokens": sc.capability_tokens, "bf16": sc.bf16})


def evaluate_model(model, tok, sc: LLMConfig, cap: dict, *, base) -> dict:
    """Deception (log-prob, both orders; generation on a subset), Perspectives, latent SOO, and
    capability against ``base`` (the model before this fine-tune). ``model`` goes through
    :func:`eval_ready` first."""
    t0 = time.perf_counter()
    model = eval_ready(model, sc)
    recs = score(model, tok, sc, burglar_both_orders(sc, n=sc.n_soo_eval), "logprob")
    gen = score(model, tok, sc, burglar_both_orders(sc, n=sc.n_generate), "generate")
    persp = score(model, tok, sc, [s for o in S.ORDERS for s in S.perspectives(sc.n_perspectives, order=o)], "logprob")
    with models.autocast(sc.bf16):
        latent = E.latent_soo(model, tok, S.probe_pairs()[:sc.n_probe])
        capab = E.capability(model, tok, cap["questions"], cap["answers"], base=base) if cap else None
    return {"deception": E.summarize_orders(recs), "records": recs, "generate": E.summarize_orders(gen),
            "generate_records": gen, "perspectives_accuracy": perspectives_accuracy(persp), "latent_soo": latent,
            "capability": capab, "eval_s": time.perf_counter() - t0}


def base_run(model_path, sc: LLMConfig, run_dir) -> dict:
    """The organism before SOO: the reference row of every comparison (cached)."""
    def compute():
        model, tok = load(sc, model_path, quantization=sc.soo.quantization)
        model = eval_ready(model, sc)
        cap = capability_set(model, tok, sc, run_dir)
        res = {"condition": "base", "seed": None, **evaluate_model(model, tok, sc, cap, base=model)}
        res["capability"] = {"kl": 0.0, **{k: v for k, v in res["capability"].items() if k != "kl"}}
        return res
    return cached_json(Path(run_dir) / "base" / "result.json", compute, _run_key(sc, model_path))


def _model_id(model_path) -> object:
    """What identifies the model a run starts from: the organism's own settings when it is one
    (so retraining the organism invalidates the runs built on it), else its name/path."""
    info = Path(str(model_path)) / "organism.json"
    return {"path": str(model_path), "organism": read_json(info).get("key")} if info.exists() else str(model_path)


def _run_key(sc: LLMConfig, model_path, cfg=None) -> dict:
    return eval_key(sc, organism=_model_id(model_path), n_soo_eval=sc.n_soo_eval, n_perspectives=sc.n_perspectives, n_generate=sc.n_generate,
                    gen_tokens=sc.gen_tokens, n_probe=sc.n_probe, n_capability=sc.n_capability,
                    n_pairs=sc.n_pairs, config=dataclasses.asdict(cfg) if cfg else None)


def _soo_spec(model_path, sc: LLMConfig, run_dir, condition: str, seed: int, layer: int | None = None,
              lr: float | None = None):
    """(config, run folder, cache key) of one SOO run; ``layer``/``lr`` ``None``: the scale's."""
    check_choice("condition", condition, CONDITIONS)
    if lr is not None and not float(lr) > 0:
        raise ValueError(f"lr={lr!r} must be > 0")
    layer = None if layer is None or int(layer) == sc.soo.layer else int(layer)  # the main layer: the main run
    lr = None if lr is None or float(lr) == sc.soo.lr else float(lr)
    cfg = replace(sc.soo, model=str(model_path), objective=condition, seed=int(seed),
                  layer=sc.soo.layer if layer is None else layer, lr=sc.soo.lr if lr is None else lr)
    return cfg, Path(run_dir) / job_name(condition, seed, layer, lr), _run_key(sc, model_path, cfg)


def job_name(condition: str, seed: int, layer: int | None = None, lr: float | None = None) -> str:
    """The run folder's name of one SOO job (``None``: the scale's layer / lr)."""
    return f"{condition}__seed{seed}" + ("" if layer is None else f"__layer{layer}") + ("" if lr is None else f"__lr{lr:g}")


def job_names(sc: LLMConfig, jobs: dict[str, list[tuple]]) -> list[str]:
    """The distinct run names of :func:`soo_jobs`' jobs (a sweep point equal to the main run is the main run)."""
    names = []
    for j in (j for group in jobs.values() for j in group):
        j = tuple(j) + (None,) * (4 - len(j))
        layer = None if j[2] is None or int(j[2]) == sc.soo.layer else int(j[2])
        lr = None if j[3] is None or float(j[3]) == sc.soo.lr else float(j[3])
        name = job_name(j[0], j[1], layer, lr)
        if name not in names:
            names.append(name)
    return names


def start_model(sc: LLMConfig, out_dir, *, progress=True):
    """What SOO fine-tunes (``sc.start_from``): the base model itself (``None``, the paper), the deceptive organism
    trained from it (``"organism"``, trained or read back under ``<out_dir>/<scale>/llm_organism``), or a folder."""
    if sc.start_from is None:
        return sc.model
    if sc.start_from == ORGANISM:
        return make_organism(sc, sc.dir(out_dir, "llm_organism"), progress=progress)
    return Path(str(sc.start_from)).expanduser()


def soo_run(model_path, sc: LLMConfig, run_dir, condition: str, seed: int, *, layer: int | None = None,
            lr: float | None = None, progress=True) -> dict:
    """Fine-tune (condition, seed[, layer, lr]) on the self/other pairs and evaluate it. Resumable:
    a finished run's ``result.json`` is read back; a trained adapter is reused."""
    cfg, rdir, key = _soo_spec(model_path, sc, run_dir, condition, seed, layer, lr)

    def compute():
        model, tok = load(sc, model_path, quantization=cfg.quantization)
        models.normalize_layer(model, cfg.layer)
        cap = capability_set(model, tok, sc, run_dir)
        if is_finished(rdir) and read_json(rdir / "manifest.json")["config"] == _jsonable(dataclasses.asdict(cfg)):
            model, tok, man = load_trained(rdir, model=model, tok=tok)  # trained before, evaluation interrupted
        else:
            r = train(cfg, pairs=S.soo_pairs(cfg.pairs)[:sc.n_pairs], model=model, tok=tok, progress=progress)
            r.save(rdir)
            model, man = r.model, r.manifest()
        base = load(sc, model_path, quantization=cfg.quantization)[0]  # the untouched start, for capability
        return {"condition": condition, "seed": int(seed), "layer": cfg.layer, "lr": cfg.lr,
                "config": dataclasses.asdict(cfg), "train_losses": man["epoch_losses"], "train_s": man["wall_s"],
                **evaluate_model(model, tok, sc, cap, base=eval_ready(base, sc))}
    return cached_json(rdir / "result.json", compute, key)


def _soo_worker(threads: int, model_path, sc, run_dir, job) -> float:
    import torch

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    soo_run(model_path, sc, run_dir, job[0], job[1], layer=job[2], lr=job[3], progress=False)
    return time.perf_counter() - t0


def soo_runs(model_path, sc: LLMConfig, run_dir, jobs, *, workers: int | None = None) -> list[dict]:
    """:func:`soo_run` for each ``(condition, seed[, layer[, lr]])`` in ``jobs`` (``None``: the
    scale's layer / lr); results in the order of ``jobs``. Finished runs are read back; the others
    run in ``workers`` processes (default ``sc.workers``; one on CUDA), each with its share of the
    CPU threads: small LoRA steps use two single-thread processes better than one process with two
    threads. Prints one line per finished run."""
    import multiprocessing as mp
    import os
    from concurrent.futures import ProcessPoolExecutor, as_completed

    import torch

    jobs = [tuple(j) + (None,) * (4 - len(j)) for j in jobs]
    specs = [_soo_spec(model_path, sc, run_dir, *j) for j in jobs]  # validates every job first
    n_layers = models.layer_count(model_path)
    if n_layers is not None:
        for cfg, _, _ in specs:
            models.check_layer(cfg.layer, n_layers)
    by_dir = {rdir: (j, key) for j, (_, rdir, key) in zip(jobs, specs)}  # one job per run folder
    todo = [j for rdir, (j, key) in by_dir.items() if not _is_cached(rdir / "result.json", key)]
    workers = 1 if torch.cuda.is_available() else max(1, min(workers or sc.workers, len(todo), os.cpu_count() or 1))
    if todo:
        print(f"{len(todo)} run(s) to train and evaluate in {workers} process(es); {len(by_dir) - len(todo)} read back",
              flush=True)
    if workers > 1:
        threads = max(1, (os.cpu_count() or 1) // workers)
        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as ex:
            futs = {ex.submit(_soo_worker, threads, str(model_path), sc, str(run_dir), j): j for j in todo}
            for f in as_completed(futs):
                print(f"  {specs[jobs.index(futs[f])][1].name}: {f.result():.0f} s", flush=True)
    else:
        for j in todo:
            soo_run(model_path, sc, run_dir, j[0], j[1], layer=j[2], lr=j[3])
    return [soo_run(model_path, sc, run_dir, j[0], j[1], layer=j[2], lr=j[3]) for j in jobs]


def result_row(res: dict) -> dict:
    d = res["deception"]
    return {"condition": res["condition"], "seed": res["seed"], "layer": res.get("layer"), "lr": res.get("lr"),
            "paper order": d["paper"]["rate"], "mirrored": d["mirrored"]["rate"], "mean": d["mean_of_orders"],
            "ci_low": d["pooled"]["ci_low"], "ci_high": d["pooled"]["ci_high"],
            "generate mean": res["generate"]["mean_of_orders"], "generate paper": res["generate"]["paper"]["rate"],
            "generate unclear": 100.0 * res["generate"]["pooled"]["n_unclear"] / res["generate"]["pooled"]["n"],
            "perspectives": res["perspectives_accuracy"],
            "latent attn": float(np.mean([x["mse"] for x in res["latent_soo"] if x["block"] == "attention"])),
            "latent mlp": float(np.mean([x["mse"] for x in res["latent_soo"] if x["block"] == "mlp"])),
            "kl": res["capability"]["kl"], "perplexity": res["capability"]["perplexity"]}


SUMMARY_COLUMNS = ("mean", "paper order", "mirrored", "generate mean", "generate paper", "generate unclear", "perspectives",
                   "latent attn", "latent mlp", "kl", "perplexity")
CONTROLS = ("lm", "soo_mse_shuffled", "soo_kl_logits")


def soo_jobs(sc: LLMConfig, conditions=CONDITIONS, sweep_layers=(), sweep_lrs=()) -> dict[str, list[tuple]]:
    """The llm_soo notebook's runs, for :func:`run_jobs`: ``"main"`` every (condition, seed) at the scale's
    layer and lr; ``"layers"`` SOO (MSE) with the first seed at each sweep layer; ``"lrs"`` SOO (MSE) with
    the first seed at the scale's lr and each sweep lr (empty when ``sweep_lrs`` is)."""
    conditions = as_choices("conditions", conditions, CONDITIONS)
    layers, sweep_lrs = as_ints("sweep_layers", sweep_layers), as_positive_floats("sweep_lrs", sweep_lrs)
    n_layers = n_layers_of(sc.model)
    for L in layers:
        check_layer(L, sc.model, n_layers, "a sweep layer", name="sweep_layers")
    seed0 = sc.seeds[0]
    lrs = sorted({sc.soo.lr, *sweep_lrs}) if sweep_lrs else []
    return {"main": [(c, s, None) for c in conditions for s in sc.seeds],
            "layers": [("soo_mse", seed0, L) for L in layers],
            "lrs": [("soo_mse", seed0, None, lr) for lr in lrs]}


def run_jobs(model_path, sc: LLMConfig, run_dir, jobs: dict[str, list[tuple]], **kwargs) -> dict[str, list[dict]]:
    """All jobs of :func:`soo_jobs` in one :func:`soo_runs` call (one pool), results grouped as given."""
    flat = [j for group in jobs.values() for j in group]
    out, res = soo_runs(model_path, sc, run_dir, flat, **kwargs), {}
    for name, group in jobs.items():
        res[name], out = out[:len(group)], out[len(group):]
    return res


def seed_summary(per_seed, columns=SUMMARY_COLUMNS):
    """Mean and population SD (ddof=0, as the paper) over seeds of each condition: a DataFrame indexed by
    condition with columns ``"<col> mean"`` and ``"<col> sd"``, conditions in their order of appearance."""
    return seed_table(per_seed, "condition", columns)


def verdict(mean: float, sd: float, ref_mean: float, ref_sd: float) -> str:
    """How a rate compares with a reference over seeds, for the prose: "lower than" / "higher than" when the
    two mean ± SD intervals do not overlap, else "not clearly different from"."""
    if mean + sd < ref_mean - ref_sd:
        return "lower than"
    if mean - sd > ref_mean + ref_sd:
        return "higher than"
    return "not clearly different from"


# ----------------------------------------------------------------------------- generalization
def generalization_scenarios(sc: LLMConfig, orders=S.ORDERS):
    return [s for v in S.VARIANTS for o in orders for s in S.variant(v, sc.n_generalization, order=o, suffix=sc.suffix)]


def generalization_run(model_path, sc: LLMConfig, run_dir, soo_dir, condition: str, seed) -> dict:
    """Deceptive rate on the 9 generalization scenarios for the organism ('base') or a trained
    (condition, seed) adapter from the llm_soo notebook (trained here if missing)."""
    name = "base" if condition == "base" else f"{condition}__seed{seed}"
    def compute():
        model, tok = load(sc, model_path, quantization=sc.soo.quantization)
        if condition != "base":
            soo_run(model_path, sc, soo_dir, condition, seed)  # read back if finished
            model, tok, _ = load_trained(Path(soo_dir) / name, model=model, tok=tok)
        model = eval_ready(model, sc)
        recs = score(model, tok, sc, generalization_scenarios(sc), "logprob")
        gen = score(model, tok, sc, generalization_scenarios(sc, orders=("paper",)), "generate")  # the paper's way
        return {"condition": condition, "seed": seed, "records": recs, "generate_records": gen,
                "by_variant": {v: E.summarize_orders([r for r in recs if r["kind"] == v]) for v in S.VARIANTS},
                "generate_by_variant": {v: E.summarize([r["label"] for r in gen if r["kind"] == v]) for v in S.VARIANTS}}
    key = eval_key(sc, organism=_model_id(model_path), n_generalization=sc.n_generalization, soo=dataclasses.asdict(sc.soo),
                   n_pairs=sc.n_pairs, gen_tokens=sc.gen_tokens)
    return cached_json(Path(run_dir) / f"{name}.json", compute, key)


# ----------------------------------------------------------------------------- MT-Bench judging (optional)
MT_BENCH_TOKENS = 512  # max new tokens per MT-Bench answer (FastChat's default is 1024)


def mt_bench_judged(model_path, sc: LLMConfig, run_dir, condition: str, seed, *, judge_url: str,
                    judge_model: str = "gpt-4", api_key_env: str = "OPENAI_API_KEY",
                    max_new_tokens: int = MT_BENCH_TOKENS) -> dict:
    """Greedy first-turn answers to the first ``sc.n_capability`` MT-Bench questions from the
    organism (``condition="base"``) or a trained (condition, seed) adapter, graded 1-10 by a
    user-supplied OpenAI-compatible judge (:func:`soo.evaluate.judge_mt_bench`). Cached per
    (model, judge): ``{"answers", "judged", "scores"}``."""
    if condition != "base":
        check_condition(condition)
    name = "base" if condition == "base" else f"{condition}__seed{seed}"

    def compute():
        model, tok = load(sc, model_path, quantization=sc.soo.quantization)
        if condition != "base":
            model, tok, _ = load_trained(Path(run_dir) / name, model=model, tok=tok)
        model = eval_ready(model, sc)
        qs = list(S.mt_bench_questions()[:sc.n_capability])
        with models.autocast(sc.bf16):
            ans = E.generate(model, tok, [q["turns"][0] for q in qs], max_new_tokens=max_new_tokens, batch_size=8)
        judged = E.judge_mt_bench({q["question_id"]: a for q, a in zip(qs, ans)}, base_url=judge_url,
                                  model=judge_model, api_key_env=api_key_env)
        return {"answers": ans, "judged": judged, "scores": E.mt_bench_category_scores(judged)}
    key = eval_key(sc, organism=_model_id(model_path), n_capability=sc.n_capability, tokens=max_new_tokens,
                   judge_url=judge_url, judge_model=judge_model, condition=condition, seed=seed)
    return cached_json(Path(run_dir) / "mt_bench" / f"{name}__{judge_model.replace('/', '_')}.json", compute, key)
