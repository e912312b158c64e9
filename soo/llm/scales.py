"""The scales and the one builder of an LLM notebook's configuration: what a notebook will run, fixed and checked
before anything is computed.

One :class:`soo.llm.config.LLMConfig` (frozen) holds everything a scale and a model fix for the LLM notebooks. It is
built in three layers, as nanoGPT's configs are, by :func:`llm_config`:

1. the **scale** (:data:`SCALES`: ``smoke`` for tests, ``default`` for the book's CPU budget, ``full`` for the
   paper's protocol) fixes the evaluation sizes, the seeds and the sweeps (at ``full`` the sweeps follow the model:
   layers spread over its depth with its SOO layer among them, learning rates at fixed multiples of its lr);
2. the **model** (:data:`soo.llm.config.MODEL_PRESETS`) fixes what comes with it: the paper's SOO layer, LoRA
   r/alpha/dropout and targets, learning rate, epochs, batch, quantization and answer ending for the paper's three
   models (PAPER_SPEC §3.1), this project's settings for the embedded SmolLM2 and the tiny test models;
3. the **overrides** ``layer``, ``lr``, ``seeds`` and ``precision``, the same for every notebook.

``precision="auto"`` computes in bf16 where the scale asks for it (``default``, ``full``: the paper's models ran in
bf16) and this machine computes bf16 natively (:func:`soo.llm.models.native_bf16`: a CUDA GPU, or a CPU with
AVX512-BF16 or AMX), and in fp32 elsewhere, where emulated bf16 is several times slower; the paper's three models
always get bf16 (they need a GPU). The precision is part of every result's key and of the plan, and the book
says which one it was built with: the two give different digits.

``start_from`` (:class:`soo.llm.config.LLMConfig`) defaults to the model preset's start (:data:`AUTO`).
"""
from __future__ import annotations

from dataclasses import replace

from . import models
from .architecture import n_layers_of
from .config import LADDER, MODEL_PRESETS, PAPER_DEPTH, LLMConfig, preset_name
from ..utils import SCALES, as_ints, as_seeds, check_choice

AUTO = "auto"
"""``start_from`` default: the model preset's start ("organism" for the small offline models, None for the rest)."""
_SMOLLM2 = MODEL_PRESETS["smollm2-135m-instruct"].soo  # the embedded model's SOO settings (its preset's)
_SMOKE = MODEL_PRESETS["tiny-random"].soo  # the tiny test models'

SWEEP_DEPTH_PARTS = 6
"""The full scale's layer sweep takes one layer in each sixth of the model's depth: the SOO layer in the sixth that
holds it, the middle layer of every other sixth (:func:`sweep_layers_for`). Sixths keep the sweep at six runs
whatever the depth and spread them over the whole of it (the first in the first sixth, the last in the last), so a
deep model is swept around its SOO layer too, not only in its first layers."""
SWEEP_LR_MULTIPLES = (0.1, 0.3, 3.0, 10.0)
"""The full scale's learning-rate sweep, as multiples of the model's preset lr (:func:`sweep_lrs_for`): about half
a decade apart, one decade below and one above, so the sweep shows on which side of the preset lr SOO works best
(the main lr, x1, is run anyway)."""


def sweep_layers_for(n_layers: int | None, layer: int) -> tuple[int, ...]:
    """The full scale's layer sweep of a model with ``n_layers`` decoder layers and SOO layer ``layer``: one layer
    per sixth of the depth (:data:`SWEEP_DEPTH_PARTS`), the SOO layer in its own sixth and the middle layer of each
    other sixth; sorted, distinct, within ``0..n_layers - 1``. ``n_layers=None`` (the depth cannot be read here):
    the SOO layer alone."""
    if n_layers is None:
        return (int(layer),)
    k = SWEEP_DEPTH_PARTS
    soo = int(layer) % n_layers
    mids = [(2 * j + 1) * n_layers // (2 * k) for j in range(k)]  # the middle layer of each part
    mids[soo * k // n_layers] = soo
    return tuple(sorted(set(mids)))


def sweep_lrs_for(lr: float) -> tuple[float, ...]:
    """The full scale's learning-rate sweep around ``lr``: ``lr`` times each of :data:`SWEEP_LR_MULTIPLES`, rounded
    to 3 significant digits (so the run names and the plan read 3e-05, not 2.9999999999999997e-05)."""
    return tuple(float(f"{lr * m:.3g}") for m in SWEEP_LR_MULTIPLES)


_SOO_SMOKE = replace(_SMOKE, epochs=1)
_ORGANISM = dict(lr=1e-3, lora_r=16, lora_alpha=32, lora_dropout=0.05,
                 target_modules=("q_proj", "k_proj", "v_proj", "o_proj"))
PRESETS: dict[str, LLMConfig] = {
    "smoke": LLMConfig("smoke", "tiny-random-llama", n_eval=4, n_soo_eval=4, n_perspectives=4, n_generalization=2,
                       n_generate=2, seeds=(0,), generalization_seeds=(0,), sweep_layers=(0, 1), sweep_lrs=(1e-2,),
                       soo=_SOO_SMOKE, organism=replace(_SOO_SMOKE, lr=1e-3, lora_r=4, lora_alpha=8, lora_dropout=0.0),
                       organism_n=8, n_capability=3, capability_tokens=8, gen_tokens=8, bf16=False, batch_size=8,
                       n_pairs=8, n_probe=4, workers=1),
    "default": LLMConfig("default", models.EMBEDDED, n_eval=50, n_soo_eval=25, n_perspectives=10, n_generalization=8,
                         n_generate=10, seeds=(0,), generalization_seeds=(0,), sweep_layers=(6, 12, 18, 24),
                         sweep_lrs=(1e-3,), soo=_SMOLLM2,
                         organism=replace(_SMOLLM2, epochs=1, bf16=True, **_ORGANISM), organism_n=128,
                         n_capability=12, capability_tokens=48, gen_tokens=75),
    "full": LLMConfig("full", models.EMBEDDED, n_eval=250, n_soo_eval=250, n_perspectives=250, n_generalization=250,
                      n_generate=250, seeds=(0, 1, 2, 3, 4), generalization_seeds=(0, 1, 2, 3, 4),
                      sweep_layers=sweep_layers_for(30, _SMOLLM2.layer), sweep_lrs=sweep_lrs_for(_SMOLLM2.lr),
                      soo=_SMOLLM2,
                      organism=replace(_SMOLLM2, epochs=3, bf16=True, **_ORGANISM), organism_n=512,
                      n_capability=80, capability_tokens=128, gen_tokens=75, n_whole=25, conditions=LADDER),
}
"""The scales, as they apply to their default model (smoke: tiny-random-llama; default, full: the embedded model, 30
layers). ``default`` is sized for ``make book`` within 30 minutes on a 2-core CPU without native bf16 (fp32): one
seed per condition, about half the evaluation items and one epoch of the organism's SFT instead of two
(:data:`DEFAULT_BEFORE`; the book's reproduce page says why). :func:`llm_config` keeps the smoke and default
sweeps for every model and computes the full scale's from the chosen model (:data:`MODEL_RELATIVE_SWEEPS`)."""
DEFAULT_BEFORE = {"seeds": (0, 1, 2), "n_eval": 100, "n_soo_eval": 50, "n_perspectives": 20, "n_generalization": 15,
                  "n_capability": 24, "organism.epochs": 2}
"""The ``default`` scale's values that changed to fit ``make book`` into 30 minutes on a 2-core AVX2 CPU, as they
were before (``"organism.epochs"``: the organism's training config's ``epochs``). The reproduce page's table of the
change is checked against this and :data:`PRESETS`."""
MODEL_RELATIVE_SWEEPS = ("full",)
"""The scales whose sweeps follow the model (its depth and its lr); the others keep their fixed sweeps, which the
book's numbers were computed with."""


def llm_config(scale: str, model: str | None = None, *, start_from=AUTO, layer=None, lr=None, seeds=None,
               precision: str = "auto") -> LLMConfig:
    """The validated configuration of ``scale`` for ``model`` (None: the scale's model), with the overrides.

    ``start_from``: ``"auto"`` (the model preset's: ``"organism"`` for the embedded and tiny models, ``None`` for
    the rest), ``None``, ``"organism"`` or a folder. ``layer``/``lr``/``seeds``: None keeps the preset's.
    ``precision``: ``"auto"`` (see the module docstring), ``"bf16"`` or ``"fp32"``.
    Raises ``ValueError`` naming the parameter before anything is computed.
    """
    check_choice("scale", scale, SCALES)
    check_choice("precision", precision, models.PRECISIONS)
    sc = PRESETS[scale]
    if model is not None and (not isinstance(model, str) or not model.strip()):
        raise ValueError(f"model={model!r}: give a model name, Hugging Face id or folder (or None for the scale's)")
    model = model or sc.model
    if model not in models.offline_names() and str(model).lower() not in models.PAPER_MODELS:
        try:
            models.resolve(model)  # a folder that does not exist, a name that is not known: say so now
        except models.ModelNotAvailableError as e:
            raise ValueError(f"model={model!r}: {e}") from None
    key = preset_name(model)
    mp = MODEL_PRESETS[key]
    n_layers = n_layers_of(model)
    if precision == AUTO:
        bf16 = sc.bf16 and (key in models.PAPER_MODELS or models.native_bf16())
    else:
        bf16 = precision == "bf16"
    sc = replace(sc, bf16=bf16)
    soo = replace(mp.soo, model=model, bf16=bf16)
    source = f"the {key!r} preset"
    if key == "other" and n_layers:
        soo, source = replace(soo, layer=round(PAPER_DEPTH * n_layers)), "the paper's relative depth 19/32"
    if scale == "smoke":
        soo = replace(soo, epochs=1)
    elif scale in mp.scale_epochs:
        soo = replace(soo, epochs=mp.scale_epochs[scale])
    if layer is not None:
        soo, source = replace(soo, layer=as_ints("layer", [layer])[0]), "the layer parameter"
    if lr is not None:
        from ..utils import as_positive_floats

        soo = replace(soo, lr=as_positive_floats("lr", [lr])[0])
    models.check_layer(soo.layer, n_layers, model=model, source=source)
    if start_from == AUTO:
        start_from = mp.start_from
    sc = replace(sc, model=model, soo=soo, organism=replace(sc.organism, model=model, bf16=sc.bf16),
                 suffix=mp.suffix, start_from=start_from)
    if scale in MODEL_RELATIVE_SWEEPS:
        sc = replace(sc, sweep_layers=sweep_layers_for(n_layers, soo.layer), sweep_lrs=sweep_lrs_for(soo.lr))
    if seeds is not None:
        seeds = as_seeds(seeds)
        sc = replace(sc, seeds=seeds, generalization_seeds=seeds[:len(sc.generalization_seeds)])
    return sc
