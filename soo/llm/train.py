"""LoRA / QLoRA fine-tuning: SOO (the paper's MSE, the repo's KL), its controls, and SFT.

This module trains and saves adapters; it does not evaluate (:mod:`soo.llm.evaluate`), choose settings
(:mod:`soo.llm.config` holds the presets) or cache results (:mod:`soo.llm.experiment`).

``train(cfg)`` fine-tunes a fresh LoRA adapter on the self/other prompt pairs with one of
the conditions in :data:`CONDITIONS` and returns a :class:`TrainResult`; ``result.save(dir)``
writes the adapter (``save_pretrained``) and a JSON manifest. ``train_sft`` fits the
answer tokens of (prompt, answer) chat examples: it makes the deceptive model organism.

Objectives (all see the same prompts and the same optimiser budget):

* ``soo_mse``: the paper, MSE at ``layers[L].<module>`` (default ``self_attn.o_proj``).
* ``soo_kl_logits``: the official repository, KL(P_other || P_self) over output logits.
* ``soo_mse_shuffled``: control, SOO MSE on mismatched pairs (each self prompt paired
  with the other prompt of a different item, a seeded derangement).
* ``lm``: control, the plain language-model loss on the same self and other prompts (scenario exposure).
* ``generic``: control, the same language-model loss on neutral texts of the same count
  (:func:`soo.llm.scenarios.generic_pairs`): a fine-tune of the same dose without the scenarios.
* ``soo_mse_names``: control, SOO MSE between two other-prompts that differ only in the name
  (:func:`soo.llm.scenarios.name_control_pairs`): the overlap without self/other.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import models
from ..losses import soo_kl_logits, soo_mse
from ..files import atomic_write_json, read_json, written_with
from ..provenance import manifest
from ..utils import seed_everything
from .config import LLMTrainConfig

# ----------------------------------------------------------------------------- data
def tokenize_pairs(tok, self_prompts, other_prompts, max_length=None):
    """Tokenize self and other prompts *together*, left-padded to one common length.

    Returns (enc_self, enc_other), each with ``input_ids`` and ``attention_mask`` of shape
    (B, T): the two prompts of a pair are aligned at their last token (see soo.losses).
    """
    if len(self_prompts) != len(other_prompts) or not self_prompts:
        raise ValueError(f"self/other prompt lists must be non-empty and of equal length "
                         f"(got {len(self_prompts)} and {len(other_prompts)})")
    side, trunc = tok.padding_side, tok.truncation_side
    tok.padding_side = tok.truncation_side = "left"  # keep the prompts' ends aligned, even when truncated
    try:
        kw = dict(padding="max_length", truncation=True, max_length=max_length) if max_length else dict(padding=True)
        enc = tok(list(self_prompts) + list(other_prompts), return_tensors="pt", **kw)
    finally:
        tok.padding_side, tok.truncation_side = side, trunc
    B = len(self_prompts)
    return {k: v[:B] for k, v in enc.items()}, {k: v[B:] for k, v in enc.items()}


def derangement(n: int, seed: int) -> list[int]:
    """A seeded permutation with no fixed point (for the shuffled-pairs control)."""
    if n < 2:
        raise ValueError("the shuffled-pairs control needs at least 2 pairs")
    g = torch.Generator().manual_seed(seed)
    while True:
        perm = torch.randperm(n, generator=g).tolist()
        if all(i != p for i, p in enumerate(perm)):
            return perm


def _to(enc, device):
    return {k: v.to(device) for k, v in enc.items()}


# ----------------------------------------------------------------------------- forward
def objective_loss(model, cfg: LLMTrainConfig, enc_self, enc_other) -> torch.Tensor:
    """The training loss of ``cfg.objective`` on one batch of aligned pairs (encodings from
    :func:`tokenize_pairs`, on any device: they are moved to the model's input device)."""
    dev = models.input_device(model)
    enc_self, enc_other = _to(enc_self, dev), _to(enc_other, dev)
    if cfg.objective in ("soo_mse", "soo_mse_shuffled", "soo_mse_names"):
        a_self = models.activations(model, enc_self, [cfg.site])[cfg.site]  # (B, T, D), the pass cut after the site
        a_other = models.activations(model, enc_other, [cfg.site])[cfg.site]  # (B, T, D)
        return soo_mse(a_self, a_other, enc_self["attention_mask"], enc_other["attention_mask"], pooling=cfg.pooling)
    if cfg.objective == "soo_kl_logits":
        mask = None if cfg.max_length else (enc_self["attention_mask"], enc_other["attention_mask"])
        ls, lo = model(**enc_self, use_cache=False).logits, model(**enc_other, use_cache=False).logits
        return soo_kl_logits(ls, lo, *(mask or (None, None)))
    # lm, generic: next-token cross-entropy on both texts of each pair, pad positions ignored
    ids = torch.cat([enc_self["input_ids"], enc_other["input_ids"]])
    am = torch.cat([enc_self["attention_mask"], enc_other["attention_mask"]])
    return model(input_ids=ids, attention_mask=am, labels=ids.masked_fill(am == 0, -100), use_cache=False).loss


def capability_kl(model, enc) -> torch.Tensor:
    """KL(P_base || P_tuned) per real token on neutral prompts (the adapter disabled = base)."""
    enc = _to(enc, models.input_device(model))
    with torch.no_grad(), model.disable_adapter():
        logp_base = F.log_softmax(model(**enc, use_cache=False).logits.float(), -1)
    logp = F.log_softmax(model(**enc, use_cache=False).logits.float(), -1)
    kl = (logp_base.exp() * (logp_base - logp)).sum(-1)  # (B, T)
    m = enc["attention_mask"].to(kl.dtype)
    return (kl * m).sum() / m.sum()


# ----------------------------------------------------------------------------- training
@dataclass
class TrainResult:
    model: object
    config: dict
    losses: list[float] = field(default_factory=list)  # one per optimiser step
    epoch_losses: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    n_examples: int = 0

    def manifest(self) -> dict:
        return manifest(config=self.config, n_examples=self.n_examples, losses=self.losses,
                        epoch_losses=self.epoch_losses, wall_s=self.wall_s)

    def save(self, out_dir) -> Path:
        """Adapter via ``save_pretrained`` plus ``manifest.json`` (written last, atomically:
        its presence marks a finished run)."""
        out_dir = Path(out_dir)
        self.model.save_pretrained(out_dir / "adapter")
        atomic_write_json(out_dir / "manifest.json", self.manifest())
        return out_dir


def lora_model(model, cfg: LLMTrainConfig):
    from peft import LoraConfig, get_peft_model

    if cfg.quantization:
        for p in model.parameters():
            p.requires_grad_(False)
    lcfg = LoraConfig(task_type="CAUSAL_LM", r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=list(cfg.target_modules))
    return get_peft_model(model, lcfg)


def _fit(model, cfg: LLMTrainConfig, n: int, batch_loss, *, progress=True, desc="train") -> TrainResult:
    """The loop shared by SOO and SFT: shuffle, micro-batches, averaged accumulation, AdamW."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    g = torch.Generator().manual_seed(cfg.seed)
    result = TrainResult(model=model, config=dataclasses.asdict(cfg))
    t0 = time.perf_counter()
    n_batches = -(-n // cfg.batch_size)
    bar = tqdm(total=cfg.epochs * n_batches, desc=desc, disable=not progress, leave=False)
    model.train()
    for _epoch in range(cfg.epochs):
        order = torch.randperm(n, generator=g).tolist()
        batches = [order[i:i + cfg.batch_size] for i in range(0, n, cfg.batch_size)]
        epoch_sum, acc, acc_loss = 0.0, 0, 0.0
        opt.zero_grad(set_to_none=True)
        for bi, idx in enumerate(batches):
            with models.autocast(cfg.bf16):
                loss = batch_loss(idx)
            # average over the micro-batches of this step (the last step may have fewer)
            k = min(cfg.grad_accum, len(batches) - (bi // cfg.grad_accum) * cfg.grad_accum)
            (loss / k).backward()
            acc += 1
            acc_loss += loss.item() / k
            epoch_sum += loss.item()
            if acc == k:
                if cfg.max_grad_norm:
                    torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
                opt.step()
                opt.zero_grad(set_to_none=True)
                result.losses.append(acc_loss)
                acc, acc_loss = 0, 0.0
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.4g}")
        result.epoch_losses.append(epoch_sum / len(batches))
    bar.close()
    model.eval()
    result.wall_s = time.perf_counter() - t0
    return result


def train(cfg: LLMTrainConfig, *, pairs=None, model=None, tok=None, progress: bool = True) -> TrainResult:
    """SOO (or control) fine-tuning of a fresh LoRA adapter; see the module docstring.

    ``pairs``: a list of :class:`soo.llm.scenarios.PromptPair` (default: the condition's own pairs,
    :func:`soo.llm.scenarios.training_pairs`, of ``cfg.pairs``). ``model``/``tok``: a loaded base model (default: ``load(cfg.model)``).
    """
    from . import scenarios

    pairs = list(pairs) if pairs is not None else scenarios.training_pairs(cfg.objective, cfg.pairs)
    if len(pairs) == 0:
        raise ValueError("pairs: the list of self/other prompt pairs is empty")
    if model is None:
        model, tok = models.load(cfg.model, quantization=cfg.quantization)
    models.normalize_layer(model, cfg.layer)  # raises before any compute
    models.module_at(model, cfg.layer, cfg.module)
    self_p = [p.self_prompt for p in pairs]
    other_p = [p.other_prompt for p in pairs]
    if cfg.objective == "soo_mse_shuffled":
        perm = derangement(len(pairs), cfg.seed)
        other_p = [other_p[j] for j in perm]
    seed_everything(cfg.seed)
    model = lora_model(model, cfg)
    neutral = None
    if cfg.capability_weight > 0:
        neutral = [q["turns"][0] for q in scenarios.mt_bench_questions()]

    def batch_loss(idx):
        es, eo = tokenize_pairs(tok, [self_p[i] for i in idx], [other_p[i] for i in idx], cfg.max_length)
        loss = objective_loss(model, cfg, es, eo)
        if neutral is not None:
            j = [neutral[(i * 7) % len(neutral)] for i in idx]
            enc = tok(j, return_tensors="pt", padding=True, truncation=True, max_length=128)
            loss = loss + cfg.capability_weight * capability_kl(model, enc)
        return loss

    result = _fit(model, cfg, len(pairs), batch_loss, progress=progress, desc=cfg.objective)
    result.n_examples = len(pairs)
    return result


def train_sft(cfg: LLMTrainConfig, prompts, answers, *, model=None, tok=None, progress: bool = True) -> TrainResult:
    """LoRA SFT on chat examples: the loss covers only the assistant's answer tokens."""
    if len(prompts) != len(answers) or not prompts:
        raise ValueError(f"prompts and answers must be non-empty and of equal length ({len(prompts)} vs {len(answers)})")
    if model is None:
        model, tok = models.load(cfg.model, quantization=cfg.quantization)
    seed_everything(cfg.seed)
    model = lora_model(model, cfg)
    dev = models.input_device(model)
    examples = []
    for p, a in zip(prompts, answers):
        head = tok.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True, tokenize=False)
        ids_h = tok(head, add_special_tokens=False)["input_ids"]
        ids_a = tok(a + tok.eos_token, add_special_tokens=False)["input_ids"]
        examples.append((ids_h + ids_a, [-100] * len(ids_h) + ids_a))

    def batch_loss(idx):
        T = max(len(examples[i][0]) for i in idx)
        pad = tok.pad_token_id
        ids = torch.tensor([[pad] * (T - len(examples[i][0])) + examples[i][0] for i in idx])
        lab = torch.tensor([[-100] * (T - len(examples[i][1])) + examples[i][1] for i in idx])
        am = torch.tensor([[0] * (T - len(examples[i][0])) + [1] * len(examples[i][0]) for i in idx])
        return model(input_ids=ids.to(dev), attention_mask=am.to(dev), labels=lab.to(dev), use_cache=False).loss

    result = _fit(model, cfg, len(examples), batch_loss, progress=progress, desc="sft")
    result.n_examples = len(examples)
    return result


def load_trained(out_dir, *, model=None, tok=None, base: str | None = None, quantization=None):
    """Reload a saved run: ``(peft_model, tok, manifest)``."""
    from peft import PeftModel

    out_dir = Path(out_dir)
    man = read_json(out_dir / "manifest.json")
    if model is None:
        model, tok = models.load(base or man["config"]["model"], quantization=quantization)
    model = PeftModel.from_pretrained(model, out_dir / "adapter")
    model.eval()
    return model, tok, man


def is_finished(out_dir, cfg: LLMTrainConfig | None = None) -> bool:
    """True if ``out_dir`` holds a saved run (its manifest is written last), trained with ``cfg`` when given."""
    path = Path(out_dir) / "manifest.json"
    return path.exists() if cfg is None else written_with(path, dataclasses.asdict(cfg), field="config")
