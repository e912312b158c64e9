"""The MADDPG update of ``soo.rl.maddpg`` for K independent runs as one computation, the engine the experiment
trains with (the training loop is ``soo.rl.training``), tested equal to the reference
(``tests/test_rl_equivalence.py``): the stacked networks (:class:`StackedMLP`), their optimiser (:class:`FlatAdam`),
the update (:class:`StackedMADDPG`) and the replay buffer (:class:`StackedReplayBuffer`).

The parameters of each network of K runs live in one flat ``(K, P)`` tensor (gradients in another), so gradient
clipping and Adam are a few ops per network whatever K is; layers are batched matrix products over runs; the critic
and policy steps have their backward written out (:meth:`StackedMLP.forward_train` / :meth:`StackedMLP.backward`:
no autograd graph, gradients written straight into the flat tensor, the policy step backpropagates through the
critic to the action columns only, never to the critic's weights); the other agent's action is computed without a
graph. K = 1 is a single run, bit-identical to :meth:`soo.rl.maddpg.MADDPG.update_reference`; K > 1 agrees with K
separate runs to float rounding (it also computes the narrow layers' products in a faster transposed form,
:data:`_NARROW`). The SOO fine-tuning's extra step (:class:`soo.rl.auxiliary.StackedAuxLoss`) is written out the
same way for K > 1; one run uses autograd on the reference's loss.
"""
from __future__ import annotations

import warnings
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .maddpg import MADDPG, MLP, N_AGENTS, reward_mean_std

# Replay rows: [obs red (6), obs blue (10), act red (2), act blue (2), next obs red (6), next obs blue (10), rew (2)]
ROW, _REW = 38, slice(36, 38)
# Gradients live in views of one flat tensor (strided when K > 1); autograd accumulates into them in place.
warnings.filterwarnings("ignore", message="grad and param do not obey the gradient layout contract")


_PARAMS = ("in_fn.weight", "in_fn.bias", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias")
_BUFFERS = ("in_fn.running_mean", "in_fn.running_var", "in_fn.num_batches_tracked")


_NARROW = 4
"""K > 1: layers with at most this many outputs (the last layers) compute their batched product in the
transposed form ``(w @ x^T)^T``, as do the first layers' backward products (a few inputs): CPU BLAS runs these
shapes 2-6x faster that way (measured on 2 cores; ``benchmarks/bench_rl.py --stacked`` times the update)."""


def _bmm_linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-run ``x[k] @ w[k].T + b[k]`` for ``x (K, B, in)``, ``w (K, out, in)``, ``b (K, out)``."""
    if w.shape[1] <= _NARROW:  # a (K, B, out) view of the (K, out, B) product
        return torch.baddbmm(b.unsqueeze(2), w, x.transpose(1, 2)).transpose(1, 2)
    return torch.baddbmm(b.unsqueeze(1), x, w.transpose(1, 2))


_LAYERS = ("fc1", "fc2", "fc3")


class StackedMLP:
    """K copies of one :class:`MLP` shape with their own weights: parameters in one flat ``(K, P)`` tensor
    ``flat`` (gradients in ``grad``), exposed per layer as views ``(K, ...)``; forward on ``(K, B, in)``.

    One run (K = 1) works on plain 2-D ``(B, in)`` tensors with ``F.linear``'s kernels, the reference's
    arithmetic; its calls also take ``(1, B, in)`` and answer ``(1, B, ...)``."""

    def __init__(self, mlps: Sequence[MLP], device="cpu", requires_grad: bool = True):
        self.K, self.policy = len(mlps), mlps[0].policy
        states = [m.state_dict() for m in mlps]
        shapes = [tuple(states[0][n].shape) for n in _PARAMS]
        sizes = [int(np.prod(s)) for s in shapes]
        self.flat = torch.cat([torch.cat([s[n].reshape(-1) for n in _PARAMS]).unsqueeze(0) for s in states]).to(device)
        self.grad = torch.zeros_like(self.flat)
        self.p, off = {}, 0  # K = 1: the layers' own shapes (plain 2-D kernels, as the reference)
        for name, shape, size in zip(_PARAMS, shapes, sizes):
            shape = shape if self.K == 1 else (self.K, *shape)
            v = self.flat[:, off:off + size].view(shape)
            if requires_grad:
                v.requires_grad_(True)
                v.grad = self.grad[:, off:off + size].view(shape)
            self.p[name] = v
            off += size
        self.leaves = list(self.p.values())
        self.grads = [v.grad for v in self.leaves] if requires_grad else []
        self.buffers = {n: torch.stack([s[n] for s in states]).to(device) for n in _BUFFERS}
        self.flat.grad = self.grad
        # Views made once, outside autograd, for the no-graph computations (the parameters change in place, the
        # views follow), rather than at every call. K > 1: the BatchNorm's running statistics as K * D channels.
        b = self.buffers
        self._running = (b["in_fn.running_mean"].view(-1), b["in_fn.running_var"].view(-1))
        if self.K == 1:
            self._bn_affine = (self.p["in_fn.weight"].detach(), self.p["in_fn.bias"].detach())
            self._lin = {n: (self.p[n + ".weight"].detach().t(), self.p[n + ".bias"].detach()) for n in _LAYERS}
        self._nbt = b["in_fn.num_batches_tracked"]
        self._grad = dict(zip(_PARAMS, self.grads))

    def _linear(self, x: torch.Tensor, layer: str) -> torch.Tensor:
        """``x @ w.T + b``: one run ``(B, in)`` with ``F.linear``'s kernel (addmm), K runs ``(K, B, in)``."""
        if self.K == 1:
            wt, b = self._lin[layer]
            return torch.addmm(b, x, wt)
        return _bmm_linear(x, self.p[layer + ".weight"], self.p[layer + ".bias"])

    def __call__(self, x: torch.Tensor, training: bool, return_hidden: bool = False):
        """``x (K, B, in)`` -> ``(K, B, out)`` (and the hidden layers ``(K, B, hidden)``); ``training``:
        BatchNorm on the batch's statistics (updating the running ones) rather than the running ones.
        Without a graph this is :meth:`forward_train`'s output; one run under autograd (the SOO fine-tuning's
        one-run loss) records the module's operations."""
        if self.K == 1 and x.dim() == 3:
            out = self(x[0], training, return_hidden)
            return tuple(t.unsqueeze(0) for t in out) if return_hidden else out.unsqueeze(0)
        if not torch.is_grad_enabled():
            out, cache = self.forward_train(x, training)
            return (cache[5], cache[6], out) if return_hidden else out
        if self.K > 1:
            raise RuntimeError("StackedMLP: K > 1 has its backward written out (forward_train / backward); "
                               "call it without autograd.")
        p = self.p
        if training:
            self._nbt.add_(1)
        xn = torch.batch_norm(x.contiguous(), p["in_fn.weight"], p["in_fn.bias"], *self._running, training, 0.1,
                              1e-5, False)
        h1 = F.leaky_relu(F.linear(xn, p["fc1.weight"], p["fc1.bias"]), inplace=True)
        h2 = F.leaky_relu(F.linear(h1, p["fc2.weight"], p["fc2.bias"]), inplace=True)
        out = F.linear(h2, p["fc3.weight"], p["fc3.bias"])
        if self.policy:
            out = torch.tanh(out)
        return (h1, h2, out) if return_hidden else out

    # The update's two steps, forward and backward written out (no autograd graph): fewer and fused ops.
    @torch.no_grad()
    def forward_train(self, x: torch.Tensor, training: bool = True):
        """Forward of ``x`` (one run ``(B, in)``; K runs ``(K, B, in)``) for :meth:`backward` -> ``(out,
        cache)``, ``out`` shaped as ``x``; the hidden layers are ``cache[5:7]``. ``training``: BatchNorm on the
        batch's statistics, running ones updated; else on the running ones (the SOO fine-tuning's extra step)."""
        K = self.K
        if training:
            self._nbt.add_(1)
        rm, rv = self._running
        if K == 1:
            if x.dim() != 2:
                raise ValueError(f"StackedMLP.forward_train: one run takes x of shape (B, in); got {tuple(x.shape)}")
            xb, (w, b) = x.contiguous(), self._bn_affine
        else:  # the runs' features side by side as K * D channels of one batch
            xb = x.transpose(0, 1).reshape(x.shape[1], -1)
            w, b = self.p["in_fn.weight"].reshape(-1), self.p["in_fn.bias"].reshape(-1)
        xn, mean, invstd = torch.native_batch_norm(xb, w, b, rm, rv, training, 0.1, 1e-5)
        if not training:  # the backward of eval-mode BatchNorm reads the running statistics
            mean, invstd = rm, rv
        if K > 1:
            xn = xn.view(xn.shape[0], K, -1).transpose(0, 1)
        h1 = F.leaky_relu(self._linear(xn, "fc1"), inplace=True)
        h2 = F.leaky_relu(self._linear(h1, "fc2"), inplace=True)
        out = self._linear(h2, "fc3")
        if self.policy:
            out = out.tanh_()
        return out, (training, xb, mean, invstd, xn, h1, h2, out)

    @torch.no_grad()
    def backward(self, cache, dout: torch.Tensor, cols: slice | None = None, dhidden=None):
        """Backpropagate ``dout`` (shaped as the forward's output) through the forward that made ``cache``.
        ``cols is None``: write every parameter's gradient (overwriting, no zeroing needed); else return the
        gradient of the input columns ``cols`` only, no parameter gradients (the policy step through the
        critic). ``dhidden``: gradients ``(d h1, d h2)`` of a loss on the hidden layers too (the SOO term; K > 1)."""
        p, K = self.p, self.K
        training, xb, mean, invstd, xn, h1, h2, out = cache
        g = None if cols is not None else self._grad
        if self.policy:
            dout = torch.ops.aten.tanh_backward(dout, out)
        dz = dout
        for h, layer, extra in ((h2, "fc3", 1), (h1, "fc2", 0)):
            w = p[layer + ".weight"]
            if g is not None:
                torch.matmul(dz.mT, h, out=g[layer + ".weight"])
                torch.sum(dz, -2, out=g[layer + ".bias"])
            # one output: a broadcast product (a matrix product over one term, exactly the same numbers)
            dh = dz * w if w.shape[-2] == 1 else torch.matmul(dz, w)
            if dhidden is not None:
                dh.add_(dhidden[extra])
            dz = torch.ops.aten.leaky_relu_backward.grad_input(dh, h, 0.01, True, grad_input=dh)  # in place
        w1, bn_w = p["fc1.weight"], (self._bn_affine[0] if K == 1 else p["in_fn.weight"].reshape(-1))
        if K == 1:
            dxn = torch.matmul(dz, w1)
        else:  # the narrow inputs' products transposed (see _NARROW), dxn straight into the BatchNorm layout
            dxn = torch.matmul(w1.mT, dz.mT).permute(2, 0, 1).reshape(dz.shape[1], -1)
        if g is not None:
            if K == 1:
                torch.matmul(dz.mT, xn, out=g["fc1.weight"])
            else:
                g["fc1.weight"].copy_(torch.matmul(xn.mT, dz).mT)
            torch.sum(dz, -2, out=g["fc1.bias"])
            running = (None, None) if training else (mean, invstd)  # eval mode: the running statistics
            _, gw, gb = torch.ops.aten.native_batch_norm_backward(
                dxn, xb, bn_w, *running, mean, invstd, training, 1e-5, [False, True, True])
            g["in_fn.weight"].copy_(gw.view_as(g["in_fn.weight"]))
            g["in_fn.bias"].copy_(gb.view_as(g["in_fn.bias"]))
            return None
        # all columns, then the wanted ones: the BatchNorm kernel's sums depend on the channel count
        dx = torch.ops.aten.native_batch_norm_backward(dxn, xb, bn_w, None, None,
                                                       mean, invstd, True, 1e-5, [True, False, False])[0]
        return (dx if K == 1 else dx.view(dx.shape[0], K, -1).transpose(0, 1))[..., cols]

    def zero_grad(self):
        self.grad.zero_()

    def clip_grad_norm_(self, max_norm: float) -> None:
        """Per run, as ``nn.utils.clip_grad_norm_`` over that run's parameters."""
        if self.K == 1:  # the reference's order of operations: the norm of the per-tensor norms
            norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(self.grads)))
        else:  # the same norm, in one pass over each run's row of the flat gradient
            norm = torch.linalg.vector_norm(self.grad, dim=1, keepdim=True)
        self.grad.mul_(torch.clamp(max_norm / (norm + 1e-6), max=1.0))

    @torch.no_grad()
    def soft_update_from(self, source: "StackedMLP", tau: float) -> None:
        self.flat.mul_(1 - tau).add_(source.flat, alpha=tau)

    def state_dict(self, k: int) -> dict:
        """Run ``k`` as an :class:`MLP` state dict (CPU tensors)."""
        out = {n: (v if self.K == 1 else v[k]).detach().cpu().clone() for n, v in self.p.items()}
        out.update({n: v[k].cpu().clone() for n, v in self.buffers.items()})
        return out


class FlatAdam:
    """Adam on a :class:`StackedMLP`'s flat ``(K, P)`` parameters: ``torch.optim.Adam``'s single-tensor
    arithmetic (betas 0.9/0.999, eps 1e-8, step by step the same float operations, so results are bit-identical
    to the reference's per-parameter Adam) without its per-call bookkeeping, which costs more than the
    arithmetic at this size. (The fused kernel rounds differently, and Adam amplifies rounding where |grad| ~ eps.)"""

    def __init__(self, net: "StackedMLP", lr: float, betas=(0.9, 0.999), eps: float = 1e-8):
        self.param, self.grad, self.lr, self.betas, self.eps = net.flat, net.grad, lr, betas, eps
        self.exp_avg, self.exp_avg_sq, self.t = torch.zeros_like(net.flat), torch.zeros_like(net.flat), 0

    @torch.no_grad()
    def step(self) -> None:
        (b1, b2), self.t = self.betas, self.t + 1
        self.exp_avg.lerp_(self.grad, 1 - b1)
        self.exp_avg_sq.mul_(b2).addcmul_(self.grad, self.grad, value=1 - b2)
        step = float(self.t)
        denom = (self.exp_avg_sq.sqrt() / (1 - b2 ** step) ** 0.5).add_(self.eps)
        self.param.addcdiv_(self.exp_avg, denom, value=-(self.lr / (1 - b1 ** step)))

    def state_dict(self, k: int) -> dict:
        return {"step": self.t, "exp_avg": self.exp_avg[k].cpu().clone(), "exp_avg_sq": self.exp_avg_sq[k].cpu().clone()}

    def load_state_dicts(self, states: Sequence[dict]) -> None:
        self.t = int(states[0]["step"])
        self.exp_avg.copy_(torch.stack([s["exp_avg"] for s in states]))
        self.exp_avg_sq.copy_(torch.stack([s["exp_avg_sq"] for s in states]))


class StackedMADDPG:
    """K independent MADDPG runs with the same network shapes and hyperparameters (seeds, rewards and
    SOO conditions may differ), updated as one computation on ``device``."""

    def __init__(self, models: Sequence[MADDPG], device="cpu"):
        cfg = models[0].cfg
        self.cfg, self.K, self.device = cfg, len(models), torch.device(device)
        self.dtype = next(models[0].parameters()).dtype  # float32; float64 in the equivalence tests
        stack = lambda part, a, grad=True: StackedMLP([getattr(m, part)[a] for m in models], device, grad)  # noqa: E731
        self.policies = [stack("policies", a) for a in range(N_AGENTS)]
        self.critics = [stack("critics", a) for a in range(N_AGENTS)]
        self.target_policies = [stack("target_policies", a, False) for a in range(N_AGENTS)]
        self.target_critics = [stack("target_critics", a, False) for a in range(N_AGENTS)]
        self.policy_opts = [FlatAdam(p, cfg.lr) for p in self.policies]
        self.critic_opts = [FlatAdam(c, cfg.lr) for c in self.critics]

    @torch.no_grad()
    def act(self, obs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Deterministic actions of every run: ``obs = [red (K, n, 6), blue (K, n, 10)]`` -> ``[(K, n, 2)] * 2``."""
        return [p(torch.as_tensor(o, dtype=self.dtype, device=self.device), False).cpu().numpy()
                for p, o in zip(self.policies, obs)]

    def update(self, rows: torch.Tensor, agent_i: int, aux_loss: Callable | None = None) -> dict:
        """One critic and one policy step of ``agent_i`` in every run on replay rows ``(K, B, 38)`` (rewards
        already normalised); :meth:`MADDPG.update_reference` per run. Losses come back as ``(K,)`` tensors."""
        cfg, i = self.cfg, agent_i
        pol, crit, info = self.policies[i], self.critics[i], {}
        if aux_loss is not None:  # (a soo.rl.auxiliary.StackedAuxLoss)
            info = aux_loss.gradients(self, rows[..., 6:16])
            pol.clip_grad_norm_(cfg.grad_clip)
            self.policy_opts[i].step()
        if self.K == 1:  # one run: plain 2-D tensors from here on
            rows = rows[0]
        obs = [rows[..., 0:6], rows[..., 6:16]]
        next_obs = [rows[..., 20:26], rows[..., 26:36]]
        # critic
        with torch.no_grad():
            next_acs = [tp(no, True) for tp, no in zip(self.target_policies, next_obs)]
            q_next = self.target_critics[i](torch.cat([*next_obs, *next_acs], -1), True)
            target = rows[..., 36 + i:37 + i] + cfg.gamma * q_next  # MPE episodes never end: no done mask
        q, cache = crit.forward_train(rows[..., 0:20])
        err = q - target
        vf_loss = (err * err).mean((-2, -1))  # F.mse_loss per run
        crit.backward(cache, err.mul_(2.0 / err.shape[-2]))
        crit.clip_grad_norm_(cfg.grad_clip)
        self.critic_opts[i].step()
        # policy: only the policy's parameters get gradients; the other agent's action is a constant
        pol_out, pol_cache = pol.forward_train(obs[i])
        with torch.no_grad():
            other = self.policies[1 - i](obs[1 - i], True)
        acs = [pol_out, other] if i == 0 else [other, pol_out]
        q, cache = crit.forward_train(torch.cat([*obs, *acs], -1))
        pol_loss = -q.mean((-2, -1)) + cfg.policy_reg * (pol_out * pol_out).mean((-2, -1))
        # d(-mean q)/dq = -1/B through the critic to blue's or red's action columns, plus the regulariser's
        d_act = crit.backward(cache, torch.full_like(q, -1.0 / q.shape[-2]), cols=slice(16 + 2 * i, 18 + 2 * i))
        pol.backward(pol_cache, d_act.add_(pol_out * (2 * cfg.policy_reg / (pol_out.shape[-2] * pol_out.shape[-1]))))
        pol.clip_grad_norm_(cfg.grad_clip)
        self.policy_opts[i].step()
        return {f"losses/vf_{i}": vf_loss.view(-1), f"losses/pol_{i}": pol_loss.view(-1), **info}

    def update_targets(self) -> None:
        for t, s in zip(self.target_policies + self.target_critics, self.policies + self.critics):
            t.soft_update_from(s, self.cfg.tau)

    def export(self, k: int, cfg: RLConfig | None = None) -> MADDPG:
        """Run ``k`` as a :class:`MADDPG` (weights, targets, BatchNorm statistics; not optimiser states)."""
        m = MADDPG(cfg or self.cfg)
        for part in ("policies", "critics", "target_policies", "target_critics"):
            for a in range(N_AGENTS):
                getattr(m, part)[a].load_state_dict(getattr(self, part)[a].state_dict(k))
        return m

    def opt_state(self, k: int) -> dict:
        """Run ``k``'s Adam states (step count, moments) of the 4 networks."""
        return {f"{name}{a}": o.state_dict(k) for name, opts in (("policy", self.policy_opts), ("critic", self.critic_opts))
                for a, o in enumerate(opts)}

    def load_opt_states(self, states: Sequence[dict]) -> None:
        """Stack per-run Adam states (all at the same step count) into the optimisers."""
        for name, opts in (("policy", self.policy_opts), ("critic", self.critic_opts)):
            for a, o in enumerate(opts):
                o.load_state_dicts([s[f"{name}{a}"] for s in states])


class StackedReplayBuffer:
    """K circular buffers of joint transitions as one ``(K, capacity, 38)`` array, with per-run running reward
    sums for normalisation; every run pushes the same number of transitions at the same time."""

    def __init__(self, K: int, capacity: int):
        self.K, self.cap, self.n, self.i = K, capacity, 0, 0
        self.data = np.zeros((K, capacity, ROW), np.float32)  # pages are touched only when filled
        self.rsum, self.rsq = np.zeros((K, N_AGENTS)), np.zeros((K, N_AGENTS))

    def __len__(self):
        return self.n

    def push(self, obs, acs, rews, next_obs):
        """``obs``/``next_obs``: ``[(K, m, 6), (K, m, 10)]``, ``acs``: ``[(K, m, 2)] * 2``, ``rews (K, m, 2)``."""
        m = rews.shape[1]
        idx = (self.i + np.arange(m)) % self.cap
        if self.n == self.cap:  # overwritten rewards leave the running sums
            old = self.data[:, idx, _REW].astype(np.float64)
            self.rsum -= old.sum(1)
            self.rsq -= (old ** 2).sum(1)
        self.data[:, idx] = np.concatenate([*obs, *acs, *next_obs, rews], axis=2)
        self.rsum += rews.sum(1)
        self.rsq += (rews.astype(np.float64) ** 2).sum(1)
        self.i = (self.i + m) % self.cap
        self.n = min(self.n + m, self.cap)

    def sample(self, batch: int, rngs: Sequence[np.random.Generator], device="cpu", dtype=torch.float32) -> torch.Tensor:
        """Rows ``(K, batch, 38)``, each run's drawn with its own generator (without replacement), rewards
        normalised by that run's buffer mean and standard deviation."""
        if self.K == 1:
            rows = self.data[0].take(rngs[0].choice(self.n, size=batch, replace=False), axis=0)[None]
        else:
            idx = np.stack([rng.choice(self.n, size=batch, replace=False) for rng in rngs])
            idx += (np.arange(self.K) * self.cap)[:, None]  # rows of the (K * cap, 38) view: take beats fancy indexing
            rows = self.data.reshape(-1, ROW).take(idx.ravel(), axis=0).reshape(self.K, batch, ROW)
        mean, std = reward_mean_std(self.rsum, self.rsq, self.n)
        rows[..., _REW] = (rows[..., _REW] - mean[:, None]) / std[:, None]
        return torch.from_numpy(rows).to(device, dtype, non_blocking=True)

    def run_state(self, k: int) -> dict:
        """Run ``k``'s filled rows and sums (a checkpoint of a young buffer stays small)."""
        t = torch.from_numpy
        return {"cap": self.cap, "n": self.n, "i": self.i, "rsum": t(self.rsum[k].copy()),
                "rsq": t(self.rsq[k].copy()), "rows": t(self.data[k, :self.n].copy())}

    def load_run_states(self, states: Sequence[dict]) -> None:
        self.n, self.i = states[0]["n"], states[0]["i"]
        for k, s in enumerate(states):
            self.data[k, :self.n] = np.asarray(s["rows"])
            self.rsum[k], self.rsq[k] = np.asarray(s["rsum"]), np.asarray(s["rsq"])
