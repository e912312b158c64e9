"""The dry run: what a notebook will run and what it needs, checked on the model built without its weights.

``-p dry_run True`` on an LLM notebook calls :func:`dry_run`: it builds the base model on PyTorch's meta device
(``accelerate.init_empty_weights``: shapes only, no memory, no download) from its architecture
(:func:`soo.llm.architecture.architecture`), checks there that the SOO site ``layers[layer].<module>`` exists, that
LoRA attaches to the target modules of every layer and that the parameter count matches the model card, estimates the
memory, writes ``plan.json`` into the notebook's run folder, prints it as a table, and skips the rest of the
notebook. Nothing is loaded, trained or written besides ``plan.json``.

The memory figures are estimates for planning (GiB = 2**30 bytes), not measurements: weights (nf4 QLoRA: 4.13 bits
per quantized weight; bf16: 2 bytes; fp32: 4), LoRA weights + gradients + AdamW moments (16 bytes per LoRA
parameter), and activations: the larger of training (both passes of a SOO pair to the SOO layer, or through the
whole model and its logits for the KL-on-logits and LM-loss objectives) and evaluation (the KV cache of a
generation batch and the logits of its prompts, the capability check's logits), at the run's batch sizes and the
token counts in :data:`TOKENS`. Every notebook holds one copy of the weights (the SOO runs read the start model
through the same copy: :func:`soo.llm.experiment.evaluate_model`). On a GPU, PyTorch's caching allocator and the
CUDA context come on top: ``fits_gpu_gib`` lists the GPU sizes of :data:`GPU_GIB` that hold the estimate with
:data:`GPU_HEADROOM` to spare. The plan of ``llm_soo`` also lists its sweeps (``sweep_layers``, ``sweep_lrs``: the
layers and learning rates at which SOO (MSE) runs with the first seed, read from its runs).
"""
from __future__ import annotations

from pathlib import Path

from ..files import atomic_write_json
from .architecture import architecture, n_layers_of
from .config import LLMConfig, MODEL_PRESETS, SooRun

GIB = 2 ** 30
TOKENS = {"soo_pair": 48, "burglar_prompt": 160, "capability_answer_extra": 32}
"""Token counts the estimate assumes: a SOO prompt, a burglar prompt in a chat template, and the question tokens
kept besides the answer in the capability check."""
N_PARAMS_TOLERANCE = 0.005
"""Relative difference allowed between the meta-device parameter count and the model card's."""
LOGIT_OBJECTIVES = ("soo_kl_logits", "lm")
GPU_GIB = (24, 40, 80, 141)
"""GPU memory sizes the plan is checked against: 24 (RTX 4090, L4), 40 (A100 40GB), 80 (A100/H100 80GB), 141 (H200)."""
GPU_HEADROOM = 0.1
"""Share of a GPU's memory left out of ``fits_gpu_gib``: the CUDA context, the caching allocator's fragmentation
and what the estimate does not count."""
PLAN_KEYS = ("model", "start_from", "n_layers", "layer", "module", "lora_r", "lora_alpha", "lora_dropout",
             "target_modules", "lr", "epochs", "batch_size", "quantization", "suffix", "max_new_tokens", "n_eval",
             "seeds", "n_params", "mem_weights_gib", "mem_weight_copies", "mem_lora_optimizer_gib",
             "mem_activations_gib", "mem_total_gib", "fits_gpu_gib", "n_runs", "sweep_layers", "sweep_lrs")


def meta_model(model: str):
    """The model built on the meta device from its architecture alone (no weights), with tied weights tied;
    ``None`` when its architecture cannot be read here."""
    from accelerate import init_empty_weights
    from transformers import AutoModelForCausalLM

    arch = architecture(model)
    if arch is None:
        return None
    with init_empty_weights():
        m = AutoModelForCausalLM.from_config(arch)
    m.tie_weights()
    return m


def meta_checks(cfg: LLMConfig) -> dict:
    """On the meta-device model: the SOO site exists, LoRA attaches to ``target_modules`` in every layer, the
    parameter count matches the model card. Raises ``ValueError`` naming the setting otherwise."""
    from peft import LoraConfig, get_peft_model
    from torch import nn

    from . import models

    m = meta_model(cfg.model)
    if m is None:
        return {"checked": False, "why": f"no architecture for {cfg.model!r} here (not packaged, not in the cache)"}
    n_params = sum(p.numel() for p in m.parameters())
    card = MODEL_PRESETS[cfg.preset].n_params if cfg.model.lower() in (cfg.preset, str(MODEL_PRESETS[cfg.preset].hf_id).lower()) else None
    if card and abs(n_params - card) > N_PARAMS_TOLERANCE * card:
        raise ValueError(f"model={cfg.model!r}: the architecture gives {n_params:,} parameters, the model card "
                         f"{card:,}; the packaged config.json does not describe this model.")
    models.module_at(m, cfg.soo.layer, cfg.soo.module)  # raises naming `module` and the valid paths
    layers = models.decoder_layers(m)
    quantizable = sum(mod.weight.numel() for mod in layers.modules() if isinstance(mod, nn.Linear))
    for t in cfg.soo.target_modules:
        if not any(n.split(".")[-1] == t for n, _ in layers[0].named_modules()):
            raise ValueError(f"target_modules={list(cfg.soo.target_modules)!r}: {t!r} is not a module of "
                             f"{type(m).__name__}'s layers; valid: {', '.join(models.module_names(m, 0))}")
    peft = get_peft_model(m, LoraConfig(task_type="CAUSAL_LM", r=cfg.soo.lora_r, lora_alpha=cfg.soo.lora_alpha,
                                        lora_dropout=cfg.soo.lora_dropout, target_modules=list(cfg.soo.target_modules)))
    n_lora_modules = sum(1 for n, _ in peft.named_modules() if n.endswith("lora_A"))
    want = len(layers) * len(cfg.soo.target_modules)
    if n_lora_modules != want:
        raise ValueError(f"target_modules={list(cfg.soo.target_modules)!r}: LoRA attached to {n_lora_modules} "
                         f"modules, expected {want} ({len(layers)} layers x {len(cfg.soo.target_modules)})")
    lora_params = sum(p.numel() for p in peft.parameters() if p.requires_grad)
    return {"checked": True, "n_params": n_params, "n_params_card": card, "lora_params": lora_params,
            "n_lora_modules": n_lora_modules, "quantizable_params": quantizable,
            "site": str(cfg.soo.site), "architecture": type(m).__name__}


def estimate_memory(cfg: LLMConfig, checks: dict, *, notebook: str, objectives=("soo_mse",)) -> dict:
    """Estimated GPU memory (GiB) of the notebook's largest step; see the module docstring for what is counted."""
    arch = architecture(cfg.model)
    if not checks.get("checked") or arch is None:
        return {k: None for k in ("mem_weights_gib", "mem_weight_copies", "mem_lora_optimizer_gib",
                                  "mem_activations_gib", "mem_total_gib", "fits_gpu_gib")}
    arch = getattr(arch, "text_config", None) or arch
    h, i, L, V = arch.hidden_size, arch.intermediate_size, arch.num_hidden_layers, arch.vocab_size
    kv = getattr(arch, "num_key_value_heads", None) or arch.num_attention_heads
    hd = getattr(arch, "head_dim", None) or h // arch.num_attention_heads
    wb = 2 if cfg.bf16 else 4  # bytes per weight / activation
    quant = cfg.soo.quantization if notebook != "llm_organism" else cfg.organism.quantization
    if quant == "4bit":
        q = checks["quantizable_params"]
        weights = q * 4.13 / 8 + (checks["n_params"] - q) * 2
    else:
        weights = checks["n_params"] * wb
    train = cfg.organism if notebook == "llm_organism" else cfg.soo
    lora = checks["lora_params"] * 16 if notebook in ("llm_organism", "llm_soo") else 0
    per_token_layer = (10 * h + 4 * i) * wb  # saved for backward: norms, projections' inputs/outputs, MLP, LoRA inputs
    B, T = train.batch_size, TOKENS["soo_pair"]
    act = 0.0
    if notebook == "llm_soo":
        upto = (train.layer % L) + 1  # the forward pass stops after the SOO site
        act = 2 * B * T * upto * per_token_layer  # self and other pass
        if any(o in LOGIT_OBJECTIVES for o in objectives):
            act = max(act, 2 * B * T * (L * per_token_layer + 3 * V * 4))
    elif notebook == "llm_organism":
        act = B * TOKENS["burglar_prompt"] * (L * per_token_layer + 3 * V * 4)
    Te = TOKENS["burglar_prompt"] + cfg.gen_tokens
    kv_cache = cfg.batch_size * Te * L * 2 * kv * hd * wb
    # prefill of a generation batch: MLP intermediates, and the logits of every prompt position (bf16, then fp32)
    prefill = cfg.batch_size * TOKENS["burglar_prompt"] * ((2 * i + 4 * h) * wb + V * (wb + 4))
    evaluation = kv_cache + prefill
    if notebook == "llm_soo":  # capability: fp32 log-softmax of tuned and base, and their KL, on the kept positions
        evaluation = max(evaluation, 8 * (cfg.capability_tokens + TOKENS["capability_answer_extra"]) * V * 4 * 3)
    act = max(act, evaluation)
    copies = 1  # the capability check reads the start model through the same copy (evaluate_model)
    total = copies * weights + lora + act
    r = lambda b: round(b / GIB, 3)  # noqa: E731
    return {"mem_weights_gib": r(weights), "mem_weight_copies": copies, "mem_lora_optimizer_gib": r(lora),
            "mem_activations_gib": r(act), "mem_total_gib": r(total), "fits_gpu_gib": fits_gpu(total / GIB)}


def fits_gpu(total_gib: float) -> list[int]:
    """The sizes of :data:`GPU_GIB` whose memory, less :data:`GPU_HEADROOM`, holds ``total_gib``."""
    return [g for g in GPU_GIB if total_gib <= (1 - GPU_HEADROOM) * g]


def planned_sweeps(cfg: LLMConfig, runs) -> dict:
    """The sweeps among ``runs`` (run names): ``sweep_layers``, the layers of the layer-sweep runs with the
    configuration's layer, and ``sweep_lrs``, the learning rates of the lr-sweep runs with the configuration's lr
    (a sweep point equal to the main run is the main run); empty lists where there is no such run."""
    parsed = [r for r in map(SooRun.from_name, runs) if r is not None]
    layers = {r.layer for r in parsed if r.layer is not None}
    lrs = {r.lr for r in parsed if r.lr is not None}
    return {"sweep_layers": sorted(layers | {cfg.soo.layer}) if layers else [],
            "sweep_lrs": sorted(lrs | {cfg.soo.lr}) if lrs else []}


def plan(cfg: LLMConfig, notebook: str, *, n_eval: int, runs=(), objectives=("soo_mse",)) -> dict:
    """The dry run's plan of ``notebook`` (keys :data:`PLAN_KEYS` first, then details)."""
    checks = meta_checks(cfg)
    train = cfg.organism if notebook == "llm_organism" else cfg.soo
    out = {"model": cfg.model, "start_from": None if cfg.start_from is None else str(cfg.start_from),
           "n_layers": n_layers_of(cfg.model), "layer": train.layer if notebook != "llm_organism" else None,
           "module": cfg.soo.module, "lora_r": train.lora_r, "lora_alpha": train.lora_alpha,
           "lora_dropout": train.lora_dropout, "target_modules": list(train.target_modules), "lr": train.lr,
           "epochs": train.epochs, "batch_size": train.batch_size, "quantization": train.quantization,
           "suffix": cfg.suffix, "max_new_tokens": cfg.gen_tokens, "n_eval": int(n_eval), "seeds": list(cfg.seeds),
           "n_params": checks.get("n_params"),
           **estimate_memory(cfg, checks, notebook=notebook, objectives=objectives),
           "n_runs": len(runs), **planned_sweeps(cfg, runs), "runs": list(runs), "notebook": notebook,
           "scale": cfg.scale, "preset": cfg.preset, "precision": cfg.precision, "bf16": cfg.bf16,
           "eval_batch_size": cfg.batch_size, "checks": checks, "assumed_tokens": TOKENS}
    if notebook == "llm_organism":
        out["layer"] = cfg.soo.layer  # the SOO layer the organism will later be fine-tuned at (unused by the SFT)
    return {**{k: out[k] for k in PLAN_KEYS}, **out}


def plan_table(p: dict):
    """The plan as a two-column table (setting, value) for the notebook."""
    import pandas as pd

    rows = [(k, p[k]) for k in PLAN_KEYS] + [(k, p[k]) for k in ("runs", "notebook", "scale", "preset")]
    return pd.DataFrame([{"setting": k, "value": ", ".join(map(str, v)) if isinstance(v, (list, tuple)) else
                          ("null" if v is None else str(v))} for k, v in rows])


def stop_here() -> None:
    """Skip every later cell of the running notebook: an IPython input transformer empties them, so the notebook
    (run by papermill or nbclient) ends successfully after this cell. Outside IPython it does nothing."""
    try:
        ip = get_ipython()  # noqa: F821 (defined in IPython)
    except NameError:
        return
    ip.input_transformers_post.append(lambda lines: [])


def dry_run(cfg: LLMConfig, notebook: str, run_dir, *, n_eval: int, runs=(), objectives=("soo_mse",)) -> dict:
    """Write the plan to ``run_dir/plan.json`` (atomically), show it, and skip the rest of the notebook."""
    p = plan(cfg, notebook, n_eval=n_eval, runs=runs, objectives=objectives)
    path = atomic_write_json(Path(run_dir) / "plan.json", p)
    try:
        from IPython.display import display

        display(plan_table(p).style.hide(axis="index"))
    except ImportError:  # no IPython (e.g. scripts/run_notebook.py on a bare GPU machine)
        print(plan_table(p).to_string(index=False))
    print(f"dry run: plan written to {path}; nothing was loaded or trained. The rest of the notebook is skipped.")
    stop_here()
    return p
