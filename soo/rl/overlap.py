"""The SOO measure of the RL experiment on blue's observations and its policy's activations: pure functions, no
training (``soo.rl.auxiliary`` applies them during fine-tuning) and no classifier (``soo.rl.metrics``); what
``soo/losses.py`` is for the LLM wing.

Blue's observation is ``[goal - self, lm0 - self, lm1 - self, red - self (or 0 out of sight), trapped x2]``.

* **Self observation** ``o_self``: a real observation with red out of sight (``o[6:8] == 0``, :func:`self_mask`).
* **Other observation** ``o_other``: the same observation with a synthetic adversary at
  ``blue + r (cos t, sin t)``, ``r ~ U(0, radius)``, ``t ~ U[0, 2 pi)``, written as
  ``adversary - self`` like real observations (:func:`make_other_obs`). The official code writes
  ``self - adversary`` (the sign opposite to the real observations) and also zeroes the trapped flag; we keep the
  flag so that the two observations differ only in whether an adversary is in sight.
* The SOO term on a policy's hidden activations ``[h1, h2]`` (:func:`hidden`):
  ``log(MSE([h1, h2](o_self), [h1, h2](o_other)) + 1e-25)`` (:func:`log_mse`, :func:`soo_term`); per observation,
  the SOO value that classifies agents (:func:`soo_values`).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

EPS = 1e-25
"""Added to every MSE before its log (the official code's), so that equal inputs give log(1e-25), not -inf."""
ADV = slice(6, 8)  # adversary slot of blue's observation


def log_mse(x: torch.Tensor, y: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """``log(MSE(x, y) + eps)``: the SOO and capability terms of the fine-tuning loss."""
    return torch.log(F.mse_loss(x, y) + eps)


def self_mask(obs) -> np.ndarray | torch.Tensor:
    """Rows of blue observations ``(n, 10)`` in which the adversary is out of sight."""
    return (obs[:, ADV] == 0).all(1)


def make_other_obs(obs, rng: np.random.Generator, radius: float = 0.125):
    """Copy blue observations ``(n, 10)`` with a synthetic adversary within ``radius`` (sign: adversary - self).

    The official code also clamps the synthetic adversary's absolute position to ``[-0.9, 0.9]``;
    an observation holds only relative positions, so we draw the offset directly (no clamp).
    """
    if not radius > 0:
        raise ValueError(f"radius={radius!r} must be > 0 (the paper uses 0.125).")
    obs = np.array(obs, dtype=np.float32, copy=True)
    obs[:, ADV] = synthetic_offsets(rng, obs.shape[0], radius)
    return obs


def synthetic_offsets(rng: np.random.Generator, n: int, radius: float) -> np.ndarray:
    """``n`` offsets ``r (cos t, sin t)``, ``t ~ U[0, 2 pi)`` then ``r ~ U(0, radius)``, as float32 ``(n, 2)``."""
    theta = rng.uniform(0.0, 2 * np.pi, size=n)
    r = rng.uniform(0.0, radius, size=n)
    return (r[:, None] * np.stack([np.cos(theta), np.sin(theta)], 1)).astype(np.float32)


def hidden(policy, obs: torch.Tensor) -> torch.Tensor:
    """Concatenated hidden activations ``[h1, h2]`` ``(n, 2 * hidden)`` of a policy in eval mode."""
    policy.eval()
    h1, h2, _ = policy(obs, return_hidden=True)
    return torch.cat([h1, h2], 1)


def soo_term(policy, obs_self: torch.Tensor, obs_other: torch.Tensor) -> torch.Tensor:
    return log_mse(hidden(policy, obs_self), hidden(policy, obs_other))


@torch.no_grad()
def soo_values(policy, obs: np.ndarray, rng: np.random.Generator, radius: float = 0.125) -> np.ndarray:
    """Per-row log-MSE SOO value of a blue policy on observations ``(n, 10)``; NaN where red is in sight."""
    out = np.full(len(obs), np.nan)
    m = self_mask(obs)
    if m.any():
        o_self = torch.as_tensor(obs[m])
        o_other = torch.as_tensor(make_other_obs(obs[m], rng, radius))
        d = ((hidden(policy, o_self) - hidden(policy, o_other)) ** 2).mean(1)
        out[m] = torch.log(d + EPS).numpy()
    return out
