"""The SOO site's activations, forward passes only: latent SOO (the self/other activation MSE per layer and block)
and the site's collapse check (how alike it answers every prompt, and the self/other and name-control gaps)."""
from __future__ import annotations

from typing import Sequence

import torch

from . import models


def _batches(seq, size):
    for i in range(0, len(seq), size):
        yield seq[i:i + size]


def _site_acts(model, tok, texts, sites) -> list[dict]:
    """Activations at ``sites`` for each text, ``[{site: (T_i, D)}]``. The batch is right-padded:
    a real token never attends to a pad that follows it and keeps its position ids, so each text's
    activations equal those of the text run alone."""
    ids = [tok(t)["input_ids"] for t in texts]
    T = max(map(len, ids))
    x = torch.full((len(ids), T), tok.pad_token_id, dtype=torch.long)
    am = torch.zeros_like(x)
    for i, c in enumerate(ids):
        x[i, :len(c)] = torch.tensor(c)
        am[i, :len(c)] = 1
    acts = models.activations(model, {"input_ids": x, "attention_mask": am}, sites)
    return [{s: a[i, :len(c)].float() for s, a in acts.items()} for i, c in enumerate(ids)]


@torch.no_grad()
def latent_soo(model, tok, pairs, *, layers=None, modules=("self_attn.o_proj", "mlp.down_proj"),
               batch_size: int = 16) -> list[dict]:
    """Latent SOO: MSE between self and other activations on probe pairs, per layer and module.

    Prompts are batched with right padding (each prompt's activations are those of the prompt run
    alone; ``batch_size`` pairs per pass). When the two prompts differ in length they are
    aligned at the end and only the last min(T_self, T_other) positions are compared. The
    outputs of ``self_attn.o_proj`` (attention) and ``mlp.down_proj`` (MLP) include any LoRA
    delta upstream. Returns one record per (layer, module): mean MSE over pairs (lower = more overlap).
    """
    from .models import ActivationSite, normalize_layer, num_layers

    if not pairs:
        raise ValueError("pairs is empty")
    layers = range(num_layers(model)) if layers is None else [normalize_layer(model, L) for L in layers]
    sites = [ActivationSite(L, m) for L in layers for m in modules]
    total = {s: 0.0 for s in sites}
    for chunk in _batches(list(pairs), batch_size):
        acts = _site_acts(model, tok, [p.self_prompt for p in chunk] + [p.other_prompt for p in chunk], sites)
        for a_s, a_o in zip(acts[:len(chunk)], acts[len(chunk):]):
            for s in sites:
                k = min(a_s[s].shape[0], a_o[s].shape[0])
                total[s] += torch.mean((a_s[s][-k:] - a_o[s][-k:]) ** 2).item()
    kind = {"self_attn.o_proj": "attention", "mlp.down_proj": "mlp"}
    return [{"layer": s.layer, "module": s.module, "block": kind.get(s.module, s.module), "mse": total[s] / len(pairs)}
            for s in sites]


@torch.no_grad()
def site_collapse(model, tok, site, prompts: Sequence[str], soo_pairs, name_pairs, *, batch_size: int = 16,
                  pooling: str = "full") -> dict:
    """The mechanism check of a SOO site (``site``: :class:`soo.llm.models.ActivationSite`), forward passes only:

    * ``spread``: the relative RMS spread of the site's output at the last prompt token over ``prompts`` (the
      evaluation prompts, raw text): ``sqrt(mean_i |a_i - mean a|^2) / sqrt(mean_i |a_i|^2)``; near 0 when the site
      answers every prompt alike (a collapsed site);
    * ``self_other_gap``: the SOO loss (:func:`soo.losses.soo_mse` with ``pooling``) between the self and the other
      prompt of each of ``soo_pairs``, the quantity SOO training lowers;
    * ``name_gap``: the same between the two prompts of each of ``name_pairs`` (two others that differ only in the
      name, :func:`soo.llm.scenarios.name_control_pairs`). If SOO lowers the name gap as much as the self/other gap,
      what it learned is not specific to self and other.
    """
    from ..losses import soo_mse
    from .models import activations
    from .train import tokenize_pairs

    def gap(pairs):
        total, n = 0.0, 0
        for i in range(0, len(pairs), batch_size):
            chunk = pairs[i:i + batch_size]
            es, eo = tokenize_pairs(tok, [p.self_prompt for p in chunk], [p.other_prompt for p in chunk])
            a_s, a_o = activations(model, es, [site])[site], activations(model, eo, [site])[site]
            total += float(soo_mse(a_s.float(), a_o.float(), es["attention_mask"], eo["attention_mask"],
                                   pooling=pooling)) * len(chunk)
            n += len(chunk)
        return total / n

    last = []
    side, tok.padding_side = tok.padding_side, "left"  # the last position is each prompt's last token
    try:
        for i in range(0, len(prompts), batch_size):
            enc = tok(list(prompts[i:i + batch_size]), return_tensors="pt", padding=True)
            last.append(activations(model, enc, [site])[site][:, -1].float())
    finally:
        tok.padding_side = side
    a = torch.cat(last)  # (N, D)
    spread = float((a - a.mean(0)).pow(2).sum(1).mean().sqrt() / a.pow(2).sum(1).mean().sqrt())
    return {"spread": spread, "self_other_gap": gap(list(soo_pairs)), "name_gap": gap(list(name_pairs))}
