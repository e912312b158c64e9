"""What an LLM experiment configuration is: the fine-tuning conditions, one training run's settings
(:class:`LLMTrainConfig`), what comes with each base model (:data:`MODEL_PRESETS`), everything a scale and a model fix
for the notebooks (:class:`LLMConfig`) and one run of ``llm_soo`` (:class:`SooRun`), each checked when it is made.

:func:`soo.llm.scales.llm_config` builds the :class:`LLMConfig` of a scale, a model and the overrides
(:mod:`soo.llm.scales` says how); :mod:`soo.llm.architecture` reads a model's architecture without its weights.

``start_from`` says what SOO fine-tunes: ``None`` the model itself (the paper), ``"organism"`` a deceptive model
organism trained from it first (this project's default for the small offline models), or a folder. One run of
``llm_soo`` (a condition, a seed and, for the sweeps, a layer or an lr) is a :class:`SooRun`, which names its
folder and gives its training configuration. Nothing here loads weights; :func:`soo.llm.plan.plan` checks the
configuration on the model built on the meta device (the dry run).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import models
from ..losses import POOLINGS
from .models import ActivationSite
from ..utils import SCALES, check_choice

ORGANISM = "organism"


# ----------------------------------------------------------------------------- conditions and training settings
CONDITIONS: dict[str, str] = {
    "soo_mse": "SOO (MSE)",
    "lm": "Scenario exposure (LM loss)",
    "soo_mse_shuffled": "Shuffled pairs",
    "soo_kl_logits": "SOO (KL, repo)",
    "generic": "Generic fine-tune",
    "soo_mse_names": "Name-control pairs",
}
"""The fine-tuning conditions (training objectives) and their labels in tables and figures, in the order the
notebooks run and show them: the paper's SOO, then the controls. The one list of condition names and labels.
Every condition has the same optimiser steps, seeds and pair count as SOO (MSE): ``lm`` is the next-token loss
on the SOO prompts themselves (scenario exposure without the SOO loss); ``soo_mse_shuffled`` the SOO loss on
mismatched pairs; ``generic`` the next-token loss on neutral text (:func:`soo.llm.scenarios.generic_pairs`);
``soo_mse_names`` the SOO loss between two other-prompts that differ only in the name
(:func:`soo.llm.scenarios.name_control_pairs`: the overlap without self/other)."""
LADDER = ("generic", "lm", "soo_mse_shuffled", "soo_mse_names", "soo_mse", "soo_kl_logits")
"""The control ladder, from the start model up: each rung adds one ingredient of SOO (any fine-tune of the same
dose; the scenario prompts; the SOO loss on unmatched pairs; the SOO loss at the site between two others; SOO
itself), then the official code's SOO."""
BOOK_CONDITIONS = ("soo_mse", "lm", "soo_mse_shuffled", "soo_kl_logits")
"""The conditions the ``default`` and ``smoke`` scales run (the book's quick rerun); ``full`` runs the whole
:data:`LADDER`."""
assert set(LADDER) == set(CONDITIONS) and set(BOOK_CONDITIONS) <= set(CONDITIONS)
BASE_LABEL = "Before SOO"
"""The label of the model before fine-tuning (the reference row of every comparison)."""


@dataclass(frozen=True)
class LLMTrainConfig:
    model: str = models.EMBEDDED
    """model name, Hugging Face id or local folder (see soo.llm.models.load)"""
    objective: str = "soo_mse"
    """one of CONDITIONS"""
    layer: int = 18
    """decoder layer of the SOO site (negative counts from the end)"""
    module: str = "self_attn.o_proj"
    """module path inside the layer whose output is compared"""
    pooling: str = "full"
    """how positions are pooled in soo_mse: full | last | mean"""
    pairs: str = "cycle"
    """'cycle': the official 52 pairs (one template per item); 'all': 52 items x 3 templates"""
    lora_r: int = 8
    lora_alpha: int = 32
    lora_dropout: float = 0.2
    target_modules: tuple[str, ...] = ("q_proj", "v_proj")
    lr: float = 1e-4
    epochs: int = 15
    batch_size: int = 4
    grad_accum: int = 1
    """micro-batches per optimiser step; gradients are averaged (the official code summed them)"""
    seed: int = 0
    quantization: str | None = None
    """None or '4bit' (bitsandbytes nf4; QLoRA)"""
    capability_weight: float = 0.0
    """weight of KL(base || tuned) on neutral prompts (MT-Bench questions); 0 as in the paper"""
    max_grad_norm: float | None = None
    """clip the gradient norm (None: no clipping, as the paper and the repo)"""
    max_length: int | None = None
    """None: pad each batch to its longest prompt; an int: fixed padding (the repo used 128)"""
    bf16: bool = False
    """compute in bf16 autocast (the paper used bf16 compute; fast on GPUs and CPUs with AVX512-BF16 or AMX, several
    times slower than fp32 where torch emulates it)"""
    note: str = ""

    def __post_init__(self):
        check_choice("objective", self.objective, tuple(CONDITIONS))
        check_choice("pooling", self.pooling, POOLINGS)
        check_choice("pairs", self.pairs, ("cycle", "all"))
        check_choice("quantization", self.quantization, models.QUANTIZATIONS)
        for name in ("epochs", "batch_size", "grad_accum", "lora_r"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name}={v!r} must be a positive integer")
        if not self.lr > 0:
            raise ValueError(f"lr={self.lr!r} must be > 0")
        if not 0 <= self.lora_dropout < 1:
            raise ValueError(f"lora_dropout={self.lora_dropout!r} must be in [0, 1)")
        if self.capability_weight < 0:
            raise ValueError(f"capability_weight={self.capability_weight!r} must be >= 0")
        if not isinstance(self.layer, int) or isinstance(self.layer, bool):
            raise ValueError(f"layer={self.layer!r} must be an integer")
        if self.max_length is not None and self.max_length < 8:
            raise ValueError(f"max_length={self.max_length!r} must be None or >= 8")
        object.__setattr__(self, "target_modules", tuple(self.target_modules))

    @property
    def site(self) -> ActivationSite:
        return ActivationSite(self.layer, self.module)


@dataclass(frozen=True)
class ModelPreset:
    """What comes with a base model."""

    soo: LLMTrainConfig
    """SOO fine-tuning settings: layer, module, LoRA, lr, epochs, batch, quantization"""
    suffix: str
    """answer ending of every burglar prompt (a key of soo.llm.scenarios.SUFFIXES): the paper's per model"""
    start_from: str | None
    """what SOO fine-tunes by default: 'organism' or None (the released model, the paper)"""
    hf_id: str | None = None
    """the Hugging Face id of the weights"""
    n_params: int | None = None
    """parameter count from the model card (checked on the meta-device model by the dry run)"""
    match: tuple[str, ...] = ()
    """lower-case pieces of a model name or folder that select this preset"""
    scale_epochs: dict = field(default_factory=dict)
    """SOO epochs at a scale other than the preset's (the CPU budget of the book)"""


_MISTRAL = LLMTrainConfig(model="mistral-7b-instruct-v0.2", layer=19, lora_r=8, lora_alpha=32, lora_dropout=0.2,
                          lr=1e-4, epochs=15, batch_size=4, quantization="4bit")
# SmolLM2-135M (30 layers): layer 18 = the paper's relative depth (Mistral 19/32); the layer sweep in llm_soo
# measures the choice. lr 3e-4: the largest of the llm_soo lr sweep (1e-4, 3e-4, 1e-3) at which the organism still
# answers (at 1e-3 SOO and its controls break it).
_SMOLLM2 = LLMTrainConfig(layer=18, lr=3e-4, epochs=15, batch_size=4)
_SMOKE = LLMTrainConfig(model="tiny-random-llama", layer=1, lr=1e-3, epochs=1, batch_size=8)

MODEL_PRESETS: dict[str, ModelPreset] = {
    "smollm2-135m-instruct": ModelPreset(_SMOLLM2, "i_would", ORGANISM, "HuggingFaceTB/SmolLM2-135M-Instruct",
                                         134_515_008, ("smollm2",), {"default": 5}),
    "tiny-random": ModelPreset(_SMOKE, "i_would", ORGANISM),
    # the paper's settings per model (PAPER_SPEC §3.1)
    "mistral-7b-instruct-v0.2": ModelPreset(_MISTRAL, "i_would", None, models.PAPER_MODELS["mistral-7b-instruct-v0.2"],
                                            7_241_732_096, ("mistral",)),
    "gemma-2-27b-it": ModelPreset(LLMTrainConfig(model="gemma-2-27b-it", layer=20, lora_r=4, lora_alpha=8,
                                                 lora_dropout=0.1, lr=9e-4, epochs=8, batch_size=4),
                                  "room_only", None, models.PAPER_MODELS["gemma-2-27b-it"], 27_227_128_320, ("gemma",)),
    # CalmeRys: only layer 57 is published; LoRA, lr and epochs are Mistral's values
    "calmerys-78b-orpo-v0.1": ModelPreset(replace(_MISTRAL, model="calmerys-78b-orpo-v0.1", layer=57,
                                                  note="only layer 57 is published; LoRA/lr/epochs are Mistral's values"),
                                          "room_only", None, models.PAPER_MODELS["calmerys-78b-orpo-v0.1"], 77_965_463_552,
                                          ("calmerys",)),
    # any other model: SmolLM2's LoRA and lr, the layer at the paper's relative depth (Mistral: 19 of 32)
    "other": ModelPreset(_SMOLLM2, "i_would", None),
}
"""What comes with each base model (the second layer of :func:`soo.llm.scales.llm_config`)."""
PAPER_DEPTH = models.PAPER_DEPTH
"""Relative depth of the SOO layer for a model without a preset (the paper's Mistral layer)."""


def preset_name(model: str) -> str:
    """The key of :data:`MODEL_PRESETS` for ``model``: its short name or Hugging Face id, then a preset's ``match``
    piece anywhere in the name (so a local copy of the weights gets the paper's settings), else ``"other"``."""
    m = str(model).lower()
    if m in models.TINY_MODELS:
        return "tiny-random"
    for key, p in MODEL_PRESETS.items():
        if m == key or (p.hf_id and m == p.hf_id.lower()):
            return key
    for key, p in MODEL_PRESETS.items():
        if any(piece in m for piece in p.match):
            return key
    return "other"


@dataclass(frozen=True)
class LLMConfig:
    """Everything a scale and a model fix for the LLM notebooks (build it with
    :func:`soo.llm.scales.llm_config`)."""

    scale: str
    """'smoke' (tests), 'default' (the book, CPU) or 'full' (the paper's protocol)"""
    model: str
    """the base model: a name, Hugging Face id or folder (soo.llm.models.load)"""
    n_eval: int
    """burglar scenarios per order (paper, mirrored) in the baseline and the organism's evaluation"""
    n_soo_eval: int
    """burglar scenarios per order scored by log-prob in each SOO run (and its reference, the start model)"""
    n_perspectives: int
    """Perspectives scenarios per order"""
    n_generalization: int
    """scenarios per generalization variant and order"""
    n_generate: int
    """burglar scenarios per order also scored by greedy generation in each SOO run (the paper's way)"""
    seeds: tuple[int, ...]
    """fine-tuning seeds of every (condition)"""
    generalization_seeds: tuple[int, ...]
    """seeds whose adapters the generalization notebook evaluates"""
    sweep_layers: tuple[int, ...]
    """SOO (MSE) with the first seed at each of these layers (at the full scale: :func:`soo.llm.scales.sweep_layers_for` the model)"""
    sweep_lrs: tuple[float, ...]
    """SOO (MSE) with the first seed at each of these learning rates, besides the main one (at the full scale:
    :func:`soo.llm.scales.sweep_lrs_for` the model's lr)"""
    soo: LLMTrainConfig
    """SOO fine-tuning (and its controls): the model preset's settings at this scale"""
    organism: LLMTrainConfig
    """the deceptive organism's LoRA SFT"""
    organism_n: int
    """SFT examples of the organism"""
    n_capability: int
    """MT-Bench first-turn questions of the offline capability check"""
    capability_tokens: int
    """greedy tokens of the start model's MT-Bench answers (the capability check's text)"""
    gen_tokens: int
    """new tokens of every greedy burglar answer (the paper and the official code: 75)"""
    start_from: str | None = ORGANISM
    """what SOO fine-tunes: None (the model itself, the paper), 'organism' (trained from the model first) or a folder"""
    suffix: str = "i_would"
    """answer ending of the burglar prompts (the model preset's)"""
    bf16: bool = True
    """base weights in bf16 with bf16 autocast (the paper's models ran in bf16); False: fp32. Resolved from the
    ``precision`` parameter by :func:`soo.llm.scales.llm_config`"""
    batch_size: int = 16
    """evaluation batch (generation, log-prob)"""
    n_pairs: int | None = None
    """SOO training pairs (None: all 52); smoke uses a few"""
    n_probe: int | None = None
    """latent-SOO probe pairs (None: all 52)"""
    workers: int = 2
    """SOO runs in parallel processes on CPU; always 1 on CUDA"""
    n_whole: int | None = None
    """burglar answers per order (a fixed seeded sample of the ``n_generate``) generated to ``gen_tokens`` in every
    SOO run; the others stop once their first-mention label is decided (the same labels:
    :func:`soo.llm.scoring.decided`). None: every answer whole"""
    conditions: tuple[str, ...] = BOOK_CONDITIONS
    """the fine-tuning conditions ``llm_soo`` runs by default (:data:`BOOK_CONDITIONS`; ``full``: the
    :data:`LADDER`)"""

    def __post_init__(self):
        check_choice("scale", self.scale, SCALES)
        for c in self.conditions:
            check_choice("conditions", c, tuple(CONDITIONS))
        if self.start_from not in (None, ORGANISM):
            path = Path(str(self.start_from)).expanduser()
            if not (path / "config.json").exists():
                raise ValueError(f"start_from={self.start_from!r} is not valid: choose None (SOO on the model itself, "
                                 f"the paper), {ORGANISM!r} (train the deceptive organism of the model first), or a "
                                 "folder holding a saved model (with config.json).")
        check_choice("suffix", self.suffix, ("i_would", "room_only", "repo", "none"))
        for name in ("n_eval", "n_soo_eval", "n_perspectives", "n_generalization", "n_generate", "organism_n",
                     "n_capability", "capability_tokens", "gen_tokens", "batch_size", "workers"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}={v!r} must be a positive integer")
        if not self.seeds:
            raise ValueError("seeds: give at least one seed (or None for the scale's default)")
        if self.n_whole is not None and not (isinstance(self.n_whole, int) and 0 <= self.n_whole <= self.n_generate):
            raise ValueError(f"n_whole={self.n_whole!r} must be None or an integer from 0 to n_generate "
                             f"({self.n_generate})")

    def dir(self, out_dir, notebook: str) -> Path:
        """The notebook's run folder: ``<out_dir>/<scale>/<notebook>``."""
        return Path(out_dir) / self.scale / notebook

    @property
    def dtype(self):
        """Weights dtype: bf16 when the scale computes in bf16 (as the paper's models ran), else the loader's
        default. LoRA adapters stay in fp32 (peft upcasts them)."""
        import torch

        return torch.bfloat16 if self.bf16 else None

    @property
    def precision(self) -> str:
        """``"bf16"`` or ``"fp32"``: what this configuration computes in."""
        return "bf16" if self.bf16 else "fp32"

    @property
    def preset(self) -> str:
        """The key of the model's preset in :data:`MODEL_PRESETS`."""
        return preset_name(self.model)


# ----------------------------------------------------------------------------- one run of llm_soo
RUN_NAME = re.compile(r"(?P<condition>\w+?)__seed(?P<seed>-?\d+)(?:__layer(?P<layer>-?\d+))?"
                       r"(?:__lr(?P<lr>[0-9.e+-]+))?")
"""A SOO run's folder name (:attr:`SooRun.name`)."""


@dataclass(frozen=True)
class SooRun:
    """One SOO fine-tuning run (or a control's): a condition and a seed, and for the sweeps a layer or a learning
    rate (``None``: the configuration's; a value equal to it is the main run, so it is stored as ``None``)."""

    condition: str
    seed: int
    layer: int | None = None
    lr: float | None = None

    def __post_init__(self):
        check_choice("condition", self.condition, tuple(CONDITIONS))
        if self.lr is not None and not float(self.lr) > 0:
            raise ValueError(f"lr={self.lr!r} must be > 0")

    @property
    def name(self) -> str:
        """The run folder's name: ``soo_mse__seed0``, ``soo_mse__seed0__layer6``, ``soo_mse__seed0__lr0.001``."""
        return (f"{self.condition}__seed{self.seed}" + ("" if self.layer is None else f"__layer{self.layer}")
                + ("" if self.lr is None else f"__lr{self.lr:g}"))

    @classmethod
    def from_name(cls, name: str) -> "SooRun | None":
        """The run a folder name (:attr:`name`) stands for; ``None`` for a name that is not a SOO run's (e.g.
        ``"organism"``). The lr is as precise as the name (6 significant digits)."""
        m = RUN_NAME.fullmatch(str(name))
        if m is None or m["condition"] not in CONDITIONS:
            return None
        return cls(m["condition"], int(m["seed"]), None if m["layer"] is None else int(m["layer"]),
                   None if m["lr"] is None else float(m["lr"]))

    def resolved(self, sc: LLMConfig) -> "SooRun":
        """The same run with a layer / lr equal to the configuration's written as ``None`` (it is the main run)."""
        layer = None if self.layer is None or int(self.layer) == sc.soo.layer else int(self.layer)
        lr = None if self.lr is None or float(self.lr) == sc.soo.lr else float(self.lr)
        return SooRun(self.condition, int(self.seed), layer, lr)

    def config(self, sc: LLMConfig, model_path):
        """The training configuration of this run."""
        return replace(sc.soo, model=str(model_path), objective=self.condition, seed=int(self.seed),
                       layer=sc.soo.layer if self.layer is None else self.layer, lr=sc.soo.lr if self.lr is None else self.lr)
