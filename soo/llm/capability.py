"""The offline capability check of a fine-tuned model against the model it started from (the per-token KL and the
perplexity on the start model's own MT-Bench answers), with the start model's outputs read from the same loaded
copy of the weights (:class:`StartOutputs`).

Nothing is written to disk here but what :meth:`StartOutputs.save` is asked to write (:mod:`soo.llm.experiment`
caches).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from . import models
from .evaluate import chat_text, length_batches


@torch.no_grad()
def capability(model, tok, questions: Sequence[str], answers: Sequence[str], *, base=None,
               batch_size: int = 8) -> dict:
    """Offline capability check against the base model on (question, base answer) texts.

    Returns the mean per-token KL(P_base || P_model) over the answer tokens and the model's
    perplexity on the base model's own greedy answers. ``base``: a separate base model (``model`` itself for the
    start model's own row: one pass); if ``None`` the model must be a PEFT model and its adapter is disabled to get
    the base.
    """
    from .models import input_device

    if len(questions) != len(answers) or not questions:
        raise ValueError("questions and answers must be non-empty and of equal length")
    dev = input_device(model)
    rows_all = [(tok(chat_text(tok, q), add_special_tokens=False)["input_ids"],
                 tok(a, add_special_tokens=False)["input_ids"] or [tok.eos_token_id]) for q, a in zip(questions, answers)]
    kl_sum = nll_sum = n_tok = 0.0
    for idx in length_batches([len(c) for c, _ in rows_all], batch_size):  # similar question lengths
        rows = [rows_all[i] for i in idx]
        T = max(len(c) + len(r) for c, r in rows)
        lo = min(len(c) for c, _ in rows) - 1  # logits only from the first position that predicts an answer token
        ids = torch.full((len(rows), T), tok.pad_token_id, dtype=torch.long)
        am = torch.zeros_like(ids)
        tgt = torch.zeros_like(ids, dtype=torch.bool)
        for i, (c, r) in enumerate(rows):  # right padding: real tokens keep their positions
            ids[i, :len(c) + len(r)] = torch.tensor(c + r)
            am[i, :len(c) + len(r)] = 1
            tgt[i, len(c) - 1:len(c) + len(r) - 1] = True  # positions that predict answer tokens
        ids, am = ids.to(dev), am.to(dev)
        keep = torch.arange(lo, T, device=dev)

        def logp_of(m):
            return torch.log_softmax(m(input_ids=ids, attention_mask=am, use_cache=False, logits_to_keep=keep)
                                     .logits.float(), -1)  # (B, T - lo, V)
        logp = logp_of(model)
        if base is None:
            with model.disable_adapter():
                logp_b = logp_of(model)
        elif base is model:  # the start model's own row: the same pass, once (its KL is 0 exactly)
            logp_b = logp
        else:
            logp_b = logp_of(base)
        kl = (logp_b.exp() * (logp_b - logp)).sum(-1)  # (B, T - lo)
        nxt = torch.roll(ids, -1, dims=1)[:, lo:]
        nll = -logp.gather(-1, nxt.unsqueeze(-1)).squeeze(-1)
        m = tgt[:, lo:].to(dev)
        kl_sum += kl[m].sum().item()
        nll_sum += nll[m].sum().item()
        n_tok += m.sum().item()
    return {"kl": kl_sum / n_tok, "perplexity": float(np.exp(nll_sum / n_tok)), "n_tokens": int(n_tok)}


# ----------------------------------------------------------------------------- the start model, from the same weights
class StartOutputs:
    """The start model's outputs on the capability check's batches, read from the one loaded copy of the weights.

    A SOO run is evaluated merged (:func:`soo.llm.evaluate.eval_ready` adds the LoRA delta to the base weights in
    place), and its capability check compares it with the start model, whose weights the merge overwrote.
    :meth:`record` runs the start model before the merge (the PEFT model with its adapter disabled: the base
    weights, untouched by LoRA) through :func:`capability`'s batches and keeps, per batch, the
    decoder's last hidden state (on the CPU: tokens x hidden size per text, not the logits). Called afterwards with
    a recorded batch's inputs, the object returns the start model's output: the model's forward runs with the
    decoder replaced by the kept state, so only the output head runs. Neither LoRA nor the merge touches the
    output head, so the logits are the ones a separately loaded start model gives, bit for bit, with one copy of
    the weights and about the same compute (the decoder runs once per batch for the start model either way).
    """

    def __init__(self, model):
        self.model = model
        self.states: dict = {}

    @staticmethod
    def key(input_ids) -> tuple:
        """What identifies a batch: its token ids (with their padding)."""
        return tuple(input_ids.shape), input_ids.detach().cpu().numpy().tobytes()

    @staticmethod
    def decoder(model):
        """The module whose first output is the last hidden state the output head reads."""
        from peft import PeftModel

        inner = model.get_base_model() if isinstance(model, PeftModel) else model
        return inner.get_decoder()

    @staticmethod
    def cast_start(model, sc) -> None:
        """Give the start model, in place, the dtype :func:`soo.llm.evaluate.eval_ready` gives a separately loaded
        one (every floating tensor in ``sc.dtype``; 4- and 8-bit bases are left as they are), without touching the
        adapter: the tensors loading left in another dtype (rotary frequencies) are cast now, as eval_ready casts
        them after the merge anyway. The weights LoRA merges into are already in ``sc.dtype`` (loaded so); a
        ``RuntimeError`` says so if not, since casting them before the merge would change the merged model."""
        from peft.tuners.lora import LoraLayer

        inner = model.get_base_model()
        if sc.dtype is None or getattr(inner, "is_loaded_in_4bit", False) or getattr(inner, "is_loaded_in_8bit", False):
            return
        merged_into = {id(m.get_base_layer().weight) for m in inner.modules() if isinstance(m, LoraLayer)}
        for name, mod in inner.named_modules():
            if any(part.startswith("lora_") for part in name.split(".")):
                continue  # the adapter stays as trained (fp32)
            for k, p in mod.named_parameters(recurse=False):
                if p.is_floating_point() and p.dtype != sc.dtype:
                    if id(p) in merged_into:
                        raise RuntimeError(f"{name}.{k} is {p.dtype}, not {sc.dtype}: the one-copy capability check "
                                           "needs the weights LoRA merges into loaded in the evaluation dtype")
                    p.data = p.data.to(sc.dtype)
            for k, b in mod.named_buffers(recurse=False):
                if b.is_floating_point() and b.dtype != sc.dtype:
                    setattr(mod, k, b.to(sc.dtype))

    @classmethod
    def record(cls, model, tok, sc, cap: dict) -> "StartOutputs":
        """Run the start model on the capability texts of ``cap``: ``model`` is the trained PEFT model, before
        :func:`soo.llm.evaluate.eval_ready`; its adapter is disabled for the pass."""
        from peft import PeftModel
        from peft.tuners.lora import LoraLayer

        if not isinstance(model, PeftModel):
            raise ValueError(f"model: StartOutputs.record needs the PEFT model of a SOO run, not a "
                             f"{type(model).__name__}")
        inner = model.get_base_model()
        if any(isinstance(m, LoraLayer) for m in (inner.get_input_embeddings(), inner.get_output_embeddings())):
            raise ValueError("target_modules: LoRA on the embeddings or the output head would merge into the weights "
                             "the start model's outputs are read back through; target the decoder layers' modules")
        cls.cast_start(model, sc)
        with model.disable_adapter():
            return cls._run(model, tok, sc, cap)[0]

    @classmethod
    def of_start(cls, model, tok, sc, cap: dict) -> tuple["StartOutputs", dict]:
        """The start model's own capability row and its recorded outputs, from one pass: ``model`` is the start
        model as it is evaluated (:func:`soo.llm.evaluate.eval_ready`). The row equals
        ``capability(model, ..., base=model)`` bit for bit (the same forward calls; its KL is 0); the outputs, saved
        (:meth:`save`), spare every SOO run of this start model its own pass (:meth:`load`), and equal what
        :meth:`record` keeps from the run's own weights."""
        return cls._run(model, tok, sc, cap)

    @classmethod
    def _run(cls, model, tok, sc, cap: dict) -> tuple["StartOutputs", dict]:
        """The capability check of ``model`` against itself, keeping each batch's last hidden state."""
        rec = cls(model)
        last: list = [None, None]  # the last batch's key and output
        kept: dict = {}

        def keep(mod, args, out) -> None:  # returns None: the decoder's output goes on unchanged
            kept["h"] = out[0]

        def run(**inputs):  # called twice per batch by capability (as the model and as its base): runs once
            k = cls.key(inputs["input_ids"])
            if last[0] != k:
                last[:] = [None, None]  # the previous batch's logits go before the next are computed
                hook = cls.decoder(model).register_forward_hook(keep)
                try:
                    last[:] = [k, model(**inputs)]
                finally:
                    hook.remove()
                h = kept.pop("h")
                rec.states[k] = (h.detach().to("cpu", copy=True), h.device)
            return last[1]

        run.get_input_embeddings = model.get_input_embeddings  # what capability reads the input device from
        with models.autocast(sc.bf16):
            row = capability(run, tok, cap["questions"], cap["answers"], base=run)
        return rec, row

    def save(self, path, key) -> None:
        """Write the recorded outputs to ``path`` (atomically) with the settings ``key`` they were made with."""
        from ..files import atomic_file, cache_key

        with atomic_file(path) as tmp:
            torch.save({"key": cache_key(key),
                        "states": [(k[0], k[1], h, str(d)) for k, (h, d) in self.states.items()]}, tmp)

    @classmethod
    def load(cls, path, key, model) -> "StartOutputs | None":
        """The outputs saved in ``path`` with the settings ``key``, for ``model`` (the run's model; each state goes
        back to the device it was recorded on); None when there is no such file or it was made with other settings."""
        from pathlib import Path

        from ..files import cache_key

        if not Path(path).exists():
            return None
        stored = torch.load(path, map_location="cpu", weights_only=True)
        if stored.get("key") != cache_key(key):
            return None
        rec = cls(model)
        rec.states = {(tuple(shape), ids): (h, torch.device(d)) for shape, ids, h, d in stored["states"]}
        return rec

    def __call__(self, **inputs):
        """The start model's output on a recorded batch, through ``self.model`` (set to the evaluated model: the
        same weights, now merged)."""
        from transformers.modeling_outputs import BaseModelOutputWithPast

        k = self.key(inputs["input_ids"])
        if k not in self.states:
            raise RuntimeError("StartOutputs: this batch was not recorded; record() must see the same capability texts")
        h, device = self.states[k]
        dec = self.decoder(self.model)
        own = dec.__dict__.get("forward")  # a forward set on the instance (e.g. by accelerate) is put back after
        dec.forward = lambda *args, **kwargs: BaseModelOutputWithPast(last_hidden_state=h.to(device))
        try:
            return self.model(**inputs)
        finally:
            if own is None:
                del dec.forward
            else:
                dec.forward = own
