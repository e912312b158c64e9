"""The fine-tuning's auxiliary loss on blue's policy, for one run (:class:`AuxLoss`, the reference) and for K runs
trained as one stack (:class:`StackedAuxLoss`, what the experiment trains with); the SOO measure itself is
``soo.rl.overlap``.

The fine-tuning loss (paper: ``MSE(A_self, A_other) + MSE(v_current, v_baseline)``, both as log-MSE in the
official code) on blue's policy ``pi`` with frozen deceptive baseline ``pi_0``:

    L = log(MSE([h1, h2](o_self), [h1, h2](o_other)) + 1e-25) + log(MSE(pi(o), pi_0(o)) + 1e-25)

Controls: ``"capability"`` drops the first term; ``"random"`` replaces it by ``log(u^10 + 1e-25)``,
``u ~ U(0, 1)`` (the official control; it carries no gradient, so it only changes the loss value).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .config import AUX_TERMS
from .maddpg import BLUE, MADDPG
from .overlap import ADV, EPS, log_mse, make_other_obs, self_mask, soo_term, synthetic_offsets
from .stacked import StackedMLP


class AuxLoss:
    """The auxiliary loss on blue's policy used by :func:`soo.rl.training.train` during fine-tuning (and by
    :meth:`soo.rl.maddpg.MADDPG.update_reference`).

    Called as ``aux(model, sample) -> (loss, info)`` on a replay sample: the capability term on its blue
    observations (up to ``n_obs``), the SOO term on those with the adversary out of sight (skipped if there
    are none). Its random generator (synthetic adversaries, the "random" control) is part of the training
    state: ``state_dict`` / ``load_state_dict`` let a resumed run continue exactly where it stopped.
    """

    def __init__(self, condition: str, pretrained: MADDPG, radius: float, rng: np.random.Generator, n_obs: int):
        if condition not in AUX_TERMS:
            raise ValueError(f"condition={condition!r} is not valid; choose one of {AUX_TERMS}.")
        self.condition, self.radius, self.rng, self.n_obs = condition, radius, rng, n_obs
        self.ref = pretrained.policies[BLUE]
        self.ref.eval()

    def state_dict(self) -> dict:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]

    def stacked(self, aux_losses: list["AuxLoss"], device) -> "StackedAuxLoss":
        """The losses of K runs (this one among them) as one computation for ``soo.rl.stacked.StackedMADDPG``."""
        return StackedAuxLoss(aux_losses, device)

    def __call__(self, model: MADDPG, sample):
        policy = model.policies[BLUE]
        obs = sample[0][BLUE][:self.n_obs]  # (n, 10)
        policy.eval()
        with torch.no_grad():
            a_base = self.ref(obs)
        cap = log_mse(policy(obs), a_base)
        info = {"losses/capability": cap.item()}
        if self.condition == "soo":
            o_self = obs[self_mask(obs)]
            if len(o_self) == 0:
                return cap, info
            o_other = torch.as_tensor(make_other_obs(o_self.numpy(), self.rng, self.radius))
            s = soo_term(policy, o_self, o_other)
            info["losses/soo"] = s.item()
            return s + cap, info
        if self.condition == "random":
            s = torch.log(torch.tensor(self.rng.uniform() ** 10 + EPS))
            info["losses/soo"] = s.item()
            return s + cap, info
        return cap, info


class StackedAuxLoss:
    """:class:`AuxLoss` of K runs at once (each its own condition, frozen baseline and generator), called by
    :meth:`soo.rl.stacked.StackedMADDPG.update` as ``aux.gradients(model, obs_blue (K, B, 10)) -> logged values``.

    The SOO term's MSE is a masked mean: rows with red in sight keep their real observation as the "other"
    one, so their hidden states are equal and add exactly zero; the sum is divided by each run's count."""

    def __init__(self, aux_losses: list[AuxLoss], device):
        self.runs = list(aux_losses)
        if len({(a.n_obs, a.radius) for a in self.runs}) > 1:
            raise ValueError("StackedAuxLoss: the runs of one stack must share n_obs and radius.")
        self.n_obs, self.radius = self.runs[0].n_obs, self.runs[0].radius
        self.ref = StackedMLP([a.ref for a in self.runs], device, requires_grad=False)
        self.soo = [k for k, a in enumerate(self.runs) if a.condition == "soo"]
        self.random = [k for k, a in enumerate(self.runs) if a.condition == "random"]

    def gradients(self, model, obs_blue: torch.Tensor) -> dict:
        """Write the loss's gradient into the blue policy's (``model.policies[BLUE].grad``) -> the logged
        values. One run: autograd on :meth:`_one_run_loss` (the reference's arithmetic); K > 1:
        :meth:`_stacked_gradients`."""
        policy = model.policies[BLUE]
        if obs_blue.shape[0] > 1:
            return self._stacked_gradients(policy, obs_blue)
        policy.zero_grad()
        loss, info = self._one_run_loss(model, obs_blue)
        loss.sum().backward(inputs=policy.leaves)
        return info

    def _stacked_gradients(self, policy, obs_blue: torch.Tensor) -> dict:
        """The same loss and its gradient written out, as the update's (no autograd graph): the real
        and the "other" observations go through the policy as one batch, whose backward gets the capability
        term's gradient at the actions and the SOO term's at the hidden layers. Equal to
        :meth:`_one_run_loss` + autograd to float rounding (``tests/test_rl_equivalence.py``: stacked vs
        separate fine-tuning)."""
        obs = obs_blue[:, :self.n_obs]  # (K, n, 10)
        K, n = obs.shape[:2]
        with torch.no_grad():
            a_base = self.ref(obs, False)
            soo = torch.full((K,), float("nan"), device=obs.device)
            ks, counts = [], []
            if self.soo:
                mask = (obs[..., ADV] == 0).all(-1)  # (K, n): red out of sight
                counts = mask.sum(1).tolist()
                ks = [k for k in self.soo if counts[k]]
            x = obs
            if ks:
                other = obs.clone()
                for k in ks:
                    off = synthetic_offsets(self.runs[k].rng, counts[k], self.radius)
                    other[k, mask[k], ADV.start:ADV.stop] = torch.from_numpy(off).to(obs.device, obs.dtype)
                x = torch.cat([obs, other], 1)  # (K, 2n, 10)
            out, cache = policy.forward_train(x, training=False)
            h1, h2 = cache[5], cache[6]
            diff = out[:, :n] - a_base
            mse = (diff * diff).mean((1, 2))
            cap = torch.log(mse + EPS)
            dout = torch.zeros_like(out)
            dout[:, :n] = diff * (2.0 / diff[0].numel() / (mse + EPS)).view(K, 1, 1)
            dhidden = None
            if ks:  # log(sum_k / count_k + eps) over [h1, h2]; rows with red in sight add exactly zero
                d1, d2 = h1[:, :n] - h1[:, n:], h2[:, :n] - h2[:, n:]
                sq = (d1 * d1).sum((1, 2)) + (d2 * d2).sum((1, 2))
                cnt = torch.tensor(counts, dtype=sq.dtype, device=obs.device) * h1.shape[2] * 2
                idx = torch.tensor(ks, device=obs.device)
                soo[idx] = torch.log(sq[idx] / cnt[idx] + EPS)
                c = torch.zeros(K, dtype=sq.dtype, device=obs.device)
                c[idx] = 2.0 / cnt[idx] / (sq[idx] / cnt[idx] + EPS)
                dhidden = [torch.cat([d * c.view(K, 1, 1), d * -c.view(K, 1, 1)], 1) for d in (d1, d2)]
            policy.backward(cache, dout, dhidden=dhidden)
            for k in self.random:  # a constant: no gradient, only the logged value
                soo[k] = torch.log(torch.tensor(self.runs[k].rng.uniform() ** 10 + EPS))
        return {"losses/capability": cap, "losses/soo": soo}

    def _one_run_loss(self, model, obs_blue: torch.Tensor):
        """The loss of a one-run stack, for autograd, with :class:`AuxLoss`'s arithmetic (bit for bit):
        ``obs_blue (1, B, 10)`` -> ``(loss (1,), logged values)``."""
        policy, run = model.policies[BLUE], self.runs[0]
        obs = obs_blue[:, :self.n_obs]  # (1, n, 10)
        with torch.no_grad():
            a_base = self.ref(obs, False)
        cap = torch.log(((policy(obs, False) - a_base) ** 2).mean((1, 2)) + EPS)  # (1,)
        loss, soo = cap, torch.full((1,), float("nan"), device=obs.device)
        if run.condition == "soo":
            o_self = obs[0][self_mask(obs[0])]
            if len(o_self):
                o_other = o_self.clone()
                o_other[:, ADV] = torch.from_numpy(synthetic_offsets(run.rng, len(o_self), self.radius)).to(obs)
                hs, ho = (torch.cat(policy(o[None], False, return_hidden=True)[:2], 2) for o in (o_self, o_other))
                term = torch.log(F.mse_loss(hs, ho) + EPS).view(1)
                loss, soo = cap + term, term.detach()
        elif run.condition == "random":  # a constant: no gradient
            soo[0] = torch.log(torch.tensor(run.rng.uniform() ** 10 + EPS))
            loss = cap + soo
        return loss, {"losses/capability": cap.detach(), "losses/soo": soo}


def make_aux_loss(condition: str | None, pretrained: MADDPG, radius: float, rng: np.random.Generator,
                  n_obs: int) -> AuxLoss | None:
    """The auxiliary loss of ``condition`` ("soo", "random", "capability"; None: no auxiliary term, plain
    continued training); see :class:`AuxLoss`."""
    return None if condition is None else AuxLoss(condition, pretrained, radius, rng, n_obs)
