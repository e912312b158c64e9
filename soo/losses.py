r"""SOO losses of the LLM experiments: pure functions of activations or logits (no model, no device logic). The RL
experiment's log-MSE terms are ``soo.rl.overlap`` (the SOO measure) and ``soo.rl.auxiliary`` (its fine-tuning loss).

The paper's loss (arXiv 2412.16325, LLM experiments) is the mean squared error between the
activations :math:`A_\text{self}` and :math:`A_\text{other}` at one site (the output of
``layers[L].self_attn.o_proj``) for a self-referencing prompt and its paired
other-referencing prompt, with gradients through both forward passes:

.. math::  \mathcal{L}_\text{SOO} = \mathrm{MSE}(A_\text{self}, A_\text{other})

The official repository instead used KL divergence between the output-token distributions,
:math:`\mathrm{KL}(P_\text{other} \,\|\, P_\text{self})`, summed over positions and vocabulary
and divided by the batch size (``F.kl_div(..., reduction="batchmean")``).

**Alignment.** Self and other prompts differ in length ("yourself" vs "Bob"). Callers pad
both to one common length ``T`` on the *left* (see :func:`soo.llm.train.tokenize_pairs`), so
the prompts are aligned at their ends: position ``T-1`` is the last token of both, which is
where the model decides what comes next. ``"full"`` pooling compares position-wise over
the positions where *both* prompts have a real token (the joint mask); padding never
contributes. This mirrors the official code, which left-padded both prompts to 128 tokens,
except that the official code also compared the padding positions.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .utils import check_choice

POOLINGS = ("full", "last", "mean")


def _check_pair(a_self: torch.Tensor, a_other: torch.Tensor, mask_self, mask_other) -> None:
    if a_self.shape != a_other.shape:
        raise ValueError(f"a_self {tuple(a_self.shape)} and a_other {tuple(a_other.shape)} must have the same "
                         "shape (pad self and other prompts to one common length, left-aligned at the end).")
    for name, m in (("mask_self", mask_self), ("mask_other", mask_other)):
        if m is not None and m.shape != a_self.shape[:2]:
            raise ValueError(f"{name} {tuple(m.shape)} must be (batch, seq) = {tuple(a_self.shape[:2])}")
        if m is not None and m.device.type != "meta" and not bool(m.bool().any(dim=1).all()):  # meta: shapes only
            rows = (~m.bool().any(dim=1)).nonzero().flatten().tolist()
            raise ValueError(f"{name} has no real token in rows {rows}: every prompt needs at least one.")


def _last_index(mask: torch.Tensor) -> torch.Tensor:
    """Index of the last real token per row. mask: (B, T) of 0/1 -> (B,)"""
    T = mask.shape[1]
    pos = torch.arange(T, device=mask.device).expand_as(mask)
    return torch.where(mask.bool(), pos, torch.full_like(pos, -1)).max(dim=1).values


def soo_mse(a_self: torch.Tensor, a_other: torch.Tensor, mask_self: torch.Tensor | None = None,
            mask_other: torch.Tensor | None = None, *, pooling: str = "full") -> torch.Tensor:
    r"""MSE between self and other activations at one site.

    Args:
        a_self, a_other: (B, T, D) activations, padded to a common length and aligned at the end.
        mask_self, mask_other: (B, T) attention masks (1 = real token); ``None`` = all real.
        pooling: ``"full"``: mean of :math:`(a_s - a_o)^2` over batch, jointly-real positions and D;
            ``"last"``: over the last real token of each prompt; ``"mean"``: between the
            masked means over positions of each prompt.
    Returns: a scalar tensor. ``soo_mse(a, a) == 0``; symmetric in (self, other).
    """
    check_choice("pooling", pooling, POOLINGS)
    _check_pair(a_self, a_other, mask_self, mask_other)
    B, T, D = a_self.shape
    ones = torch.ones(B, T, device=a_self.device, dtype=a_self.dtype)
    m_s = ones if mask_self is None else mask_self.to(a_self.dtype)
    m_o = ones if mask_other is None else mask_other.to(a_self.dtype)
    if pooling == "full":
        joint = (m_s * m_o).unsqueeze(-1)  # (B, T, 1)
        sq = (a_self - a_other).pow(2) * joint  # (B, T, D)
        return sq.sum() / (joint.sum() * D).clamp_min(1.0)
    if pooling == "last":
        rows = torch.arange(B, device=a_self.device)
        v_s = a_self[rows, _last_index(m_s)]  # (B, D)
        v_o = a_other[rows, _last_index(m_o)]
        return F.mse_loss(v_s, v_o)
    # mean
    v_s = (a_self * m_s.unsqueeze(-1)).sum(1) / m_s.sum(1, keepdim=True).clamp_min(1.0)  # (B, D)
    v_o = (a_other * m_o.unsqueeze(-1)).sum(1) / m_o.sum(1, keepdim=True).clamp_min(1.0)
    return F.mse_loss(v_s, v_o)


def soo_kl_logits(logits_self: torch.Tensor, logits_other: torch.Tensor, mask_self: torch.Tensor | None = None,
                  mask_other: torch.Tensor | None = None) -> torch.Tensor:
    r"""The official repository's loss: :math:`\mathrm{KL}(P_\text{other} \| P_\text{self})`.

    Args:
        logits_self, logits_other: (B, T, V) output logits, aligned as for :func:`soo_mse`.
        mask_self, mask_other: optional (B, T) masks. With both ``None`` every position counts,
            as in the official code (which included its 128-token padding); otherwise only
            positions real in both prompts count.
    Returns: :math:`\frac{1}{B}\sum_{b,t,v} P_o \,(\log P_o - \log P_s)`, a scalar
    (``F.kl_div(log_softmax(self), softmax(other), reduction="batchmean")``).
    """
    _check_pair(logits_self, logits_other, mask_self, mask_other)
    logp_s = F.log_softmax(logits_self.float(), dim=-1)
    logp_o = F.log_softmax(logits_other.float(), dim=-1)
    kl = (logp_o.exp() * (logp_o - logp_s)).sum(-1)  # (B, T)
    if mask_self is not None or mask_other is not None:
        ones = torch.ones_like(kl)
        m = (ones if mask_self is None else mask_self.to(kl.dtype)) * (ones if mask_other is None else mask_other.to(kl.dtype))
        kl = kl * m
    return kl.sum() / logits_self.shape[0]
