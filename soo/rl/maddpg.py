"""MADDPG as in maddpg-pytorch (the fork the official code used), one run, written plainly: the networks, the
update, the exploration noise, the replay buffer and the training loop, top to bottom. This is the reference
algorithm; what the experiment runs is the same update on K runs at once (the engine ``soo.rl.stacked`` and its loop
``soo.rl.training``, tested equal to this file's update and loop in ``tests/test_rl_equivalence.py``), with the runs'
folders, keys and checkpoints in ``soo.rl.training``. The SOO loss comes in as ``aux_loss`` (``soo.rl.auxiliary``).

Networks: ``BatchNorm1d(in) -> Linear(in, 64) -> leaky_relu -> Linear(64, 64) -> leaky_relu -> Linear(64, out)``;
the policy ends in tanh with its last weights ~ U(-3e-3, 3e-3); the centralised critic sees all
observations and actions (6 + 10 + 2 + 2 = 20 inputs). Adam lr 0.01, gamma 0.95, tau 0.01, batch 1024,
buffer 1e6, gradient clip 0.5, policy loss ``-Q + 1e-3 mean(a^2)``, rewards normalised by the buffer's
mean and standard deviation, OU exploration noise (theta 0.15, sigma 0.2) scaled 0.3 -> 0 over 25k episodes.

Deviations (also listed in the book):

1. ``num_envs`` environments are stepped in parallel (maddpg-pytorch's ``n_rollout_threads``; the
   official runs used 1). Updates keep the per-transition rate: exactly one update round (both
   agents, then the targets) per ``steps_per_update`` = 100 transitions, whatever ``num_envs`` is.
   maddpg-pytorch's ``t % steps_per_update < n_rollout_threads`` test would update once per
   transition for ``n_rollout_threads >= 100``.
2. The OU noise process is independent per environment (maddpg-pytorch shares one across threads).
3. The noise scale is annealed per batch of ``num_envs`` episodes (episode index of the batch's first).
4. Reward normalisation guards against a zero standard deviation (early buffers where an agent never
   got a reward would give NaN in maddpg-pytorch).
5. Replay indices are drawn with a seeded ``numpy.random.Generator`` (without replacement).
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import RLConfig
from .env import ACT_DIM, OBS_DIMS, BatchedDeceptionEnv

N_AGENTS = 2  # red adversary, blue agent
RED, BLUE = 0, 1


class MLP(nn.Module):
    """maddpg-pytorch ``MLPNetwork`` with leaky ReLU (the official fork); ``forward`` can expose (h1, h2)."""

    def __init__(self, in_dim: int, out_dim: int, hidden_dim: int = 64, policy: bool = False):
        super().__init__()
        self.in_fn = nn.BatchNorm1d(in_dim)
        self.in_fn.weight.data.fill_(1)
        self.in_fn.bias.data.fill_(0)
        self.fc1 = nn.Linear(in_dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, hidden_dim)
        self.fc3 = nn.Linear(hidden_dim, out_dim)
        self.policy = policy
        if policy:
            self.fc3.weight.data.uniform_(-3e-3, 3e-3)

    def forward(self, x, return_hidden: bool = False):
        h1 = F.leaky_relu(self.fc1(self.in_fn(x)))  # (B, hidden)
        h2 = F.leaky_relu(self.fc2(h1))  # (B, hidden)
        out = self.fc3(h2)
        if self.policy:
            out = torch.tanh(out)
        return (h1, h2, out) if return_hidden else out


def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """``target <- (1 - tau) target + tau source`` over parameters (not BatchNorm buffers, as maddpg-pytorch)."""
    with torch.no_grad():
        for t, s in zip(target.parameters(), source.parameters()):
            t.mul_(1 - tau).add_(s, alpha=tau)


class MADDPG(nn.Module):
    """Two agents' policies, critics, their targets and optimizers: one run, as plain modules.

    Used to build, save and load runs and to evaluate them; ``soo.rl.stacked.StackedMADDPG`` trains them."""

    def __init__(self, cfg: RLConfig):
        super().__init__()
        self.cfg = cfg
        crit_in = sum(OBS_DIMS) + N_AGENTS * ACT_DIM
        self.policies = nn.ModuleList([MLP(d, ACT_DIM, cfg.hidden_dim, policy=True) for d in OBS_DIMS])
        self.critics = nn.ModuleList([MLP(crit_in, 1, cfg.hidden_dim) for _ in OBS_DIMS])
        self.target_policies = nn.ModuleList([MLP(d, ACT_DIM, cfg.hidden_dim, policy=True) for d in OBS_DIMS])
        self.target_critics = nn.ModuleList([MLP(crit_in, 1, cfg.hidden_dim) for _ in OBS_DIMS])
        self.target_policies.load_state_dict(self.policies.state_dict())
        self.target_critics.load_state_dict(self.critics.state_dict())
        self.policy_opts = [torch.optim.Adam(p.parameters(), lr=cfg.lr) for p in self.policies]
        self.critic_opts = [torch.optim.Adam(c.parameters(), lr=cfg.lr) for c in self.critics]

    @torch.no_grad()
    def act(self, obs, noise=None) -> list[np.ndarray]:
        """Deterministic actions (eval-mode BatchNorm) for ``obs = [red (n, 6), blue (n, 10)]``, plus noise."""
        self.policies.eval()
        acts = [p(torch.as_tensor(o)).numpy() for p, o in zip(self.policies, obs)]
        if noise is not None:
            acts = [np.clip(a + n, -1, 1) for a, n in zip(acts, noise)]
        return acts

    def update_reference(self, sample, agent_i: int, aux_loss: Callable | None = None) -> dict:
        """One critic and one policy step of ``agent_i`` on ``sample`` (maddpg-pytorch ``MADDPG.update``),
        written plainly; ``soo.rl.stacked.StackedMADDPG.update`` computes the same faster (tested equal).

        ``aux_loss(self, sample)`` (SOO fine-tuning) is a loss on the blue policy, optimised in its own
        step before the regular update, as in the official fork.
        """
        cfg = self.cfg
        obs, acs, rews, next_obs, dones = sample
        self.train()
        info = {}
        if aux_loss is not None:
            self.policy_opts[agent_i].zero_grad()
            loss, info = aux_loss(self, sample)
            loss.backward()
            nn.utils.clip_grad_norm_(self.policies[agent_i].parameters(), cfg.grad_clip)
            self.policy_opts[agent_i].step()
            self.train()
        # critic
        self.critic_opts[agent_i].zero_grad()
        with torch.no_grad():
            next_acs = [pi(no) for pi, no in zip(self.target_policies, next_obs)]
            q_next = self.target_critics[agent_i](torch.cat([*next_obs, *next_acs], 1))
            target = rews[agent_i].view(-1, 1) + cfg.gamma * q_next * (1 - dones.view(-1, 1))
        q = self.critics[agent_i](torch.cat([*obs, *acs], 1))
        vf_loss = F.mse_loss(q, target)
        vf_loss.backward()
        nn.utils.clip_grad_norm_(self.critics[agent_i].parameters(), cfg.grad_clip)
        self.critic_opts[agent_i].step()
        # policy
        self.policy_opts[agent_i].zero_grad()
        pol_out = self.policies[agent_i](obs[agent_i])
        all_acs = [pol_out if i == agent_i else pi(o).detach() for i, (pi, o) in enumerate(zip(self.policies, obs))]
        pol_loss = -self.critics[agent_i](torch.cat([*obs, *all_acs], 1)).mean()
        pol_loss = pol_loss + cfg.policy_reg * (pol_out ** 2).mean()
        pol_loss.backward()
        nn.utils.clip_grad_norm_(self.policies[agent_i].parameters(), cfg.grad_clip)
        self.policy_opts[agent_i].step()
        return {f"losses/vf_{agent_i}": vf_loss.item(), f"losses/pol_{agent_i}": pol_loss.item(), **info}

    def update_targets(self) -> None:
        soft_update(self.target_policies, self.policies, self.cfg.tau)
        soft_update(self.target_critics, self.critics, self.cfg.tau)


def reward_mean_std(rsum: np.ndarray, rsq: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The mean and standard deviation of a buffer's ``n`` rewards from their running sums and sums of squares (per
    agent, on the last axis), the standard deviation taken as 1 where it is ~0 (deviation 4)."""
    mean = rsum / n
    std = np.sqrt(np.maximum(rsq / n - mean ** 2, 0.0))
    return mean, np.where(std > 1e-8, std, 1.0)


class ReplayBuffer:
    """Circular buffer of joint transitions with running reward sums for normalisation (one run, plain
    numpy; the reference for ``soo.rl.stacked.StackedReplayBuffer``)."""

    def __init__(self, capacity: int):
        self.cap, self.n, self.i = capacity, 0, 0
        self.obs = [np.zeros((capacity, d), np.float32) for d in OBS_DIMS]
        self.next_obs = [np.zeros((capacity, d), np.float32) for d in OBS_DIMS]
        self.acs = [np.zeros((capacity, ACT_DIM), np.float32) for _ in OBS_DIMS]
        self.rews = np.zeros((capacity, N_AGENTS), np.float32)
        self.rsum, self.rsq = np.zeros(N_AGENTS), np.zeros(N_AGENTS)

    def __len__(self):
        return self.n

    def push(self, obs, acs, rews, next_obs):
        m = rews.shape[0]
        idx = (self.i + np.arange(m)) % self.cap
        if self.n == self.cap:  # overwritten rewards leave the running sums
            old = self.rews[idx].astype(np.float64)
            self.rsum -= old.sum(0)
            self.rsq -= (old ** 2).sum(0)
        for a in range(N_AGENTS):
            self.obs[a][idx], self.next_obs[a][idx], self.acs[a][idx] = obs[a], next_obs[a], acs[a]
        self.rews[idx] = rews
        self.rsum += rews.sum(0)
        self.rsq += (rews.astype(np.float64) ** 2).sum(0)
        self.i = (self.i + m) % self.cap
        self.n = min(self.n + m, self.cap)

    def sample(self, batch: int, rng: np.random.Generator):
        idx = rng.choice(self.n, size=batch, replace=False)
        mean, std = reward_mean_std(self.rsum, self.rsq, self.n)
        rews = (self.rews[idx] - mean) / std
        t = lambda x: torch.as_tensor(x, dtype=torch.float32)  # noqa: E731
        return ([t(o[idx]) for o in self.obs], [t(a[idx]) for a in self.acs],
                [t(rews[:, a]) for a in range(N_AGENTS)], [t(o[idx]) for o in self.next_obs],
                torch.zeros(batch))  # MPE episodes never terminate: dones are always 0


class OUNoise:
    """Ornstein-Uhlenbeck noise, one process per environment: ``(n, dim)``."""

    def __init__(self, n, dim=ACT_DIM, theta=0.15, sigma=0.2):
        self.n, self.dim, self.theta, self.sigma = n, dim, theta, sigma
        self.reset()

    def reset(self):
        self.x = np.zeros((self.n, self.dim))

    def __call__(self, rng, scale):
        self.x = self.x + self.theta * -self.x + self.sigma * rng.standard_normal(self.x.shape)
        return self.x * scale


def noise_scale(cfg: RLConfig, ep: int) -> float:
    """The exploration noise's scale at episode ``ep``: annealed linearly from ``init_noise_scale`` to
    ``final_noise_scale`` over ``n_exploration_eps`` episodes."""
    return cfg.final_noise_scale + (cfg.init_noise_scale - cfg.final_noise_scale) * \
        max(0, cfg.n_exploration_eps - ep) / cfg.n_exploration_eps


def updates_due(t: int, n_envs: int, steps_per_update: int) -> int:
    """Update rounds due when ``n_envs`` transitions follow the first ``t``: one per ``steps_per_update``."""
    return (t + n_envs) // steps_per_update - t // steps_per_update


def train_reference(cfg: RLConfig, init: MADDPG | None = None, aux_loss: Callable | None = None) -> dict:
    """One run with :meth:`MADDPG.update_reference` and :class:`ReplayBuffer`: the straightforward loop that
    ``soo.rl.training.train`` speeds up (no checkpoints, nothing written). For the equivalence tests, benchmarks and
    learning-curve comparisons (``benchmarks/bench_rl.py --curves``); returns ``{"history", "wall_time_s"}`` like
    ``metrics.json``."""
    torch.manual_seed(cfg.seed)
    model = MADDPG(cfg)
    if init is not None:
        model.load_state_dict(init.state_dict())
    n_envs = min(cfg.num_envs, cfg.n_episodes)
    env = BatchedDeceptionEnv(n_envs, cfg.env, seed=cfg.seed)
    rng = np.random.default_rng([cfg.seed, 1])
    buffer = ReplayBuffer(cfg.buffer_length)
    noise = [OUNoise(n_envs) for _ in range(N_AGENTS)]
    ep, t, history, t0 = 0, 0, [], time.perf_counter()
    while ep < cfg.n_episodes:
        obs = env.reset()
        scale = noise_scale(cfg, ep)
        for nz in noise:
            nz.reset()
        ret, done, infos = np.zeros((n_envs, N_AGENTS)), False, {}
        while not done:
            acts = model.act(obs, [nz(rng, scale) for nz in noise])
            next_obs, rew, done, info = env.step(acts)
            buffer.push(obs, acts, rew, next_obs)
            ret += rew
            obs = next_obs
            n_updates = updates_due(t, n_envs, cfg.steps_per_update)
            t += n_envs
            if len(buffer) >= cfg.batch_size:
                for _ in range(n_updates):
                    for a in range(N_AGENTS):
                        infos.update(model.update_reference(buffer.sample(cfg.batch_size, rng), a,
                                                            aux_loss if a == BLUE else None))
                    model.update_targets()
        ep += n_envs
        history.append({"episode": ep, "noise": scale, "return_red": float(ret[:, 0].mean()),
                        "return_blue": float(ret[:, 1].mean()), "trapped": float(info["trapped"].mean()), **infos})
    return {"history": history, "wall_time_s": time.perf_counter() - t0}
