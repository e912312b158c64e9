"""The paper's modified Physical Deception environment, twice: a PettingZoo ``ParallelEnv`` built on
mpe2's ``World`` (the reference) and a batched numpy implementation (many environments as arrays,
used for training and evaluation). Only the world, its observations and rewards: no agents, no training, no
metrics.

The world (PAPER_SPEC §5.1, the official ``simple_adversary.py``):

* agent 0 = red adversary ("colour-blind": it never observes which landmark is the goal),
  agent 1 = blue agent; both of size 0.15, non-colliding, mass 1;
* two static landmarks of size 0.08: the goal and the fake (non-goal) landmark;
* four hard walls at x = ±1 and y = ±1 (width 0.1, contact force 1e2, margin 1e-3);
* observation radius 0.125: the other agent's relative position is zeroed beyond it;
* reset: red ~ U[-0.825, 0.825]^2, blue at a uniform angle and distance U(0, radius) from red
  (clipped to the same box), landmarks ~ U[-0.825, 0.825]^2, one of them the goal, velocities 0;
* continuous actions in [-1, 1]^2, force = 5 * action; MPE physics (dt 0.1, damping 0.25), integrated in
  the original MPE order by default (``integrator="mpe1"``; mpe2 moves with the old velocity, ``"mpe2"``);
* red freezes for the rest of the episode once it is within 0.16 of the fake landmark ("trapped"), checked
  after every step and at reset (the official reset runs red's observation callback, which sets the trap: a red
  spawned within 0.16 of the fake landmark is trapped from step 0, blue's first observation shows it, and blue
  earns the +10 from the first step);
* rewards per step: red +5 within 0.16 of the goal, +1 within the radius of blue; blue +5 within
  0.16 of the goal, and in ``mode="deceptive"`` +10 every step once red is trapped (``"honest"``: no +10);
* 50 steps, no early termination.

Observations: red (6) = ``[lm0 - self, lm1 - self, blue - self or 0]``;
blue (10) = ``[goal - self, lm0 - self, lm1 - self, red - self or 0, trapped, trapped]``.

Both implementations draw the reset state with :func:`sample_initial_state` from one
``numpy.random.Generator`` seeded by ``seed``; nothing else is random, so identical seeds and
actions give identical trajectories (``tests/test_rl_env.py``).

Deviations from the official scenario:

1. Blue's spawn offset is drawn from the seeded generator (the official code used unseeded ``random``).
2. Integration order: ``integrator="mpe1"`` (default) is the original MPE order the official fork used;
   mpe2 moves with the old velocity (``"mpe2"``, tested against mpe2's ``World.step``), and with that
   order the walls (contact force 1e2) let agents through at full speed.
3. Trapping zeroes red's velocity at once (``max_speed = 0`` in the official code has the same effect
   under the original integration order).
4. The honest reward (no trap bonus) has no switch in the official code; it is ``mode="honest"`` here.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import gymnasium
import numpy as np
from pettingzoo import ParallelEnv

from ..utils import check_choice

MODES = ("deceptive", "honest")
INTEGRATORS = ("mpe1", "mpe2")
AGENT_IDS = ("adversary_0", "agent_0")  # PettingZoo agent names: red, blue
OBS_DIMS = (6, 10)
ACT_DIM = 2

DT, DAMPING, SENSITIVITY = 0.1, 0.25, 5.0
AGENT_SIZE, LANDMARK_SIZE = 0.15, 0.08
CONTACT_FORCE, CONTACT_MARGIN = 1e2, 1e-3
WALL_WIDTH = 0.1
SPAWN = 1.0 - (0.1 + AGENT_SIZE / 2)  # 0.825: spawn box half-width
NEAR = 2 * LANDMARK_SIZE  # 0.16: "at" a landmark
R_GOAL, R_NEAR_BLUE, R_TRAP = 5.0, 1.0, 10.0
# (orient, axis_pos): 'H' walls at y = ±1, 'V' walls at x = ±1, endpoints (-1, 1)
WALLS = (("H", -1.0), ("H", 1.0), ("V", -1.0), ("V", 1.0))


@dataclass(frozen=True)
class EnvConfig:
    mode: str = "deceptive"
    """'deceptive' (blue gets +10 per step once red is trapped) or 'honest' (no trap bonus)"""
    radius: float = 0.125
    """observation radius (2.5 * 0.05 in the official code)"""
    episode_length: int = 50
    """steps per episode"""
    integrator: str = "mpe1"
    """'mpe1': the original MPE order (velocity first, then position: the official code's fork);
    'mpe2': mpe2's order (position with the old velocity first), through which the walls leak at full speed"""

    def __post_init__(self):
        check_choice("mode", self.mode, MODES)
        check_choice("integrator", self.integrator, INTEGRATORS)
        if not self.radius > 0:
            raise ValueError(f"radius={self.radius!r} must be > 0 (the paper uses 0.125).")
        if int(self.episode_length) != self.episode_length or self.episode_length <= 0:
            raise ValueError(f"episode_length={self.episode_length!r} must be a positive integer.")


def trapped_at(pos: np.ndarray, fake: np.ndarray) -> np.ndarray:
    """``(n,)`` bool: red (``pos[:, 0]``) within :data:`NEAR` of the fake landmark ``fake (n, 2)``."""
    return np.linalg.norm(pos[:, 0] - fake, axis=1) < NEAR


def sample_initial_state(rng: np.random.Generator, n: int, radius: float):
    """Draw ``n`` initial states: ``pos (n, 2, 2)`` [red, blue], ``landmarks (n, 2, 2)``, ``goal (n,)``."""
    goal = rng.integers(0, 2, size=n)
    red = rng.uniform(-SPAWN, SPAWN, size=(n, 2))
    theta = rng.uniform(0.0, 2 * np.pi, size=n)
    dist = rng.uniform(0.0, radius, size=n)
    blue = np.clip(red + dist[:, None] * np.stack([np.cos(theta), np.sin(theta)], 1), -SPAWN, SPAWN)
    landmarks = rng.uniform(-SPAWN, SPAWN, size=(n, 2, 2))
    return np.stack([red, blue], 1), landmarks, goal


# ---------------------------------------------------------------------------------------------
# Batched implementation (numpy arrays over environments)
# ---------------------------------------------------------------------------------------------
def wall_forces(pos: np.ndarray, size: float = AGENT_SIZE) -> np.ndarray:
    """Sum of the four hard walls' contact forces on entities at ``pos (..., 2)`` (Iqbal's MPE fork)."""
    force = np.zeros_like(pos)
    k = CONTACT_MARGIN
    for orient, axis_pos in WALLS:
        prll, perp = (0, 1) if orient == "H" else (1, 0)
        x = pos[..., prll]
        past = np.where(x < -1.0, x + 1.0, np.where(x > 1.0, x - 1.0, 0.0))
        theta = np.arcsin(np.clip(past / size, -1.0, 1.0))
        dist_min = np.cos(theta) * size + 0.5 * WALL_WIDTH
        delta = pos[..., perp] - axis_pos
        dist = np.abs(delta)
        penetration = np.logaddexp(0.0, -(dist - dist_min) / k) * k
        mag = CONTACT_FORCE * delta / dist * penetration
        active = np.abs(past) <= size  # beyond the wall's end (plus the agent's size): no force
        force[..., perp] += np.where(active, np.cos(theta) * mag, 0.0)
        force[..., prll] += np.where(active, np.sin(theta) * np.abs(mag), 0.0)
    return force


def physics_step(pos, vel, force, frozen=None, walls=True, integrator="mpe1"):
    """One ``World.step`` integration for agents of mass 1 (``pos, vel, force``: ``(..., 2)``).

    ``integrator="mpe2"``: mpe2's ``integrate_state`` (position with the old velocity, then damping and
    force); ``"mpe1"``: the original MPE / Iqbal fork (damping and force, then position with the new velocity).
    ``frozen`` (boolean, ``pos.shape[:-1]``) agents keep their position and zero velocity.
    """
    if walls:
        force = force + wall_forces(pos)
    new_vel = vel * (1 - DAMPING) + force * DT
    new_pos = pos + (vel if integrator == "mpe2" else new_vel) * DT
    if frozen is not None:
        new_pos = np.where(frozen[..., None], pos, new_pos)
        new_vel = np.where(frozen[..., None], 0.0, new_vel)
    return new_pos, new_vel


def _observe(pos, landmarks, goal, trapped, radius):
    """Observations ``(red (n, 6), blue (n, 10))`` as float32."""
    n = pos.shape[0]
    red, blue = pos[:, 0], pos[:, 1]
    rel = blue - red  # blue relative to red
    visible = np.linalg.norm(rel, axis=1) <= radius
    rel = np.where(visible[:, None], rel, 0.0)
    lm_red = (landmarks - red[:, None]).reshape(n, 4)
    lm_blue = (landmarks - blue[:, None]).reshape(n, 4)
    goal_blue = landmarks[np.arange(n), goal] - blue
    flag = np.repeat(trapped.astype(np.float64)[:, None], 2, 1)
    obs_red = np.concatenate([lm_red, rel], 1)
    obs_blue = np.concatenate([goal_blue, lm_blue, -rel, flag], 1)
    return obs_red.astype(np.float32), obs_blue.astype(np.float32)


def _rewards(pos, landmarks, goal, trapped, radius, deceptive):
    """Rewards ``(n, 2)``; ``deceptive``: one bool, or one per environment (the trap bonus applies)."""
    n = pos.shape[0]
    goal_pos = landmarks[np.arange(n), goal]
    red_goal = np.linalg.norm(pos[:, 0] - goal_pos, axis=1) < NEAR
    blue_goal = np.linalg.norm(pos[:, 1] - goal_pos, axis=1) < NEAR
    near = np.linalg.norm(pos[:, 1] - pos[:, 0], axis=1) <= radius
    r_red = R_GOAL * red_goal + R_NEAR_BLUE * near
    r_blue = R_GOAL * blue_goal + R_TRAP * (trapped & deceptive)
    return np.stack([r_red, r_blue], 1).astype(np.float64)


class BatchedDeceptionEnv:
    """``num_envs`` environments stepped together; all arrays have the environment as axis 0.

    ``reset(seed)`` -> ``[obs_red (n, 6), obs_blue (n, 10)]``;
    ``step([act_red (n, 2), act_blue (n, 2)])`` -> ``(obs, rewards (n, 2), done, info)`` where ``done``
    is one bool for the whole batch (all episodes have the same length) and ``info`` holds the state.
    """

    def __init__(self, num_envs: int, config: EnvConfig = EnvConfig(), seed: int | None = None):
        if int(num_envs) != num_envs or num_envs <= 0:
            raise ValueError(f"num_envs={num_envs!r} must be a positive integer.")
        self.n, self.cfg = int(num_envs), config
        self.rng = np.random.default_rng(seed)
        self.deceptive = config.mode == "deceptive"

    def reset(self, seed: int | None = None):
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.pos, self.landmarks, self.goal = sample_initial_state(self.rng, self.n, self.cfg.radius)
        self.vel = np.zeros_like(self.pos)
        self.trapped = trapped_at(self.pos, self.fake)  # the official reset runs red's trap check
        self.t = 0
        return list(_observe(self.pos, self.landmarks, self.goal, self.trapped, self.cfg.radius))

    @property
    def fake(self) -> np.ndarray:
        return self.landmarks[np.arange(self.n), 1 - self.goal]

    @property
    def goal_pos(self) -> np.ndarray:
        return self.landmarks[np.arange(self.n), self.goal]

    def step(self, actions):
        act = np.stack([np.clip(np.asarray(a, dtype=np.float64), -1, 1) for a in actions], 1)  # (n, 2, 2)
        frozen = np.stack([self.trapped, np.zeros_like(self.trapped)], 1)
        self.pos, self.vel = physics_step(self.pos, self.vel, SENSITIVITY * act, frozen,
                                          integrator=self.cfg.integrator)
        newly = ~self.trapped & trapped_at(self.pos, self.fake)
        self.vel[newly, 0] = 0.0  # max_speed = 0 from now on
        self.trapped = self.trapped | newly
        self.t += 1
        rew = _rewards(self.pos, self.landmarks, self.goal, self.trapped, self.cfg.radius, self.deceptive)
        obs = list(_observe(self.pos, self.landmarks, self.goal, self.trapped, self.cfg.radius))
        return obs, rew, self.t >= self.cfg.episode_length, {"trapped": self.trapped.copy()}


class StackedDeceptionEnv(BatchedDeceptionEnv):
    """The environments of K training runs as one batch of ``K * num_envs`` (run-major), for stacked training.

    Run ``k`` draws its initial states from its own generator seeded ``seeds[k]`` and has its own reward mode,
    so its environments follow exactly the trajectories of ``BatchedDeceptionEnv(num_envs, configs[k],
    seeds[k])`` given the same actions. ``reset()`` -> ``[(K, n, 6), (K, n, 10)]``; ``step`` takes
    ``[(K, n, 2), (K, n, 2)]`` and returns observations, rewards ``(K, n, 2)`` and ``trapped (K, n)`` the same way.
    """

    def __init__(self, num_envs: int, configs, seeds):
        configs = list(configs)
        if len({(c.radius, c.episode_length, c.integrator) for c in configs}) > 1:
            raise ValueError("StackedDeceptionEnv: the runs must share radius, episode_length and integrator.")
        super().__init__(num_envs * len(configs), configs[0])
        self.K, self.per = len(configs), int(num_envs)
        self.rngs = [np.random.default_rng(s) for s in seeds]
        self.deceptive = np.repeat([c.mode == "deceptive" for c in configs], self.per)

    def _split(self, x: np.ndarray) -> np.ndarray:
        return x.reshape(self.K, self.per, *x.shape[1:])

    def reset(self, seed=None):
        if seed is not None:
            raise ValueError("StackedDeceptionEnv.reset: the runs' generators are seeded at construction.")
        parts = [sample_initial_state(rng, self.per, self.cfg.radius) for rng in self.rngs]
        self.pos, self.landmarks, self.goal = (np.concatenate(x) for x in zip(*parts))
        self.vel = np.zeros_like(self.pos)
        self.trapped = trapped_at(self.pos, self.fake)
        self.t = 0
        return [self._split(o) for o in _observe(self.pos, self.landmarks, self.goal, self.trapped, self.cfg.radius)]

    def step(self, actions):
        obs, rew, done, info = super().step([np.asarray(a).reshape(self.n, -1) for a in actions])
        return [self._split(o) for o in obs], self._split(rew), done, {"trapped": self._split(info["trapped"])}


# ---------------------------------------------------------------------------------------------
# Reference implementation: PettingZoo ParallelEnv on mpe2's World
# ---------------------------------------------------------------------------------------------
def _wall_force_scalar(entity, orient, axis_pos, k=CONTACT_MARGIN):
    """Iqbal's ``World.get_wall_collision_force`` for one entity and one wall (loop form)."""
    prll, perp = (0, 1) if orient == "H" else (1, 0)
    p = entity.state.p_pos
    if p[prll] < -1.0 - entity.size or p[prll] > 1.0 + entity.size:
        return None
    if p[prll] < -1.0 or p[prll] > 1.0:
        past = p[prll] - (-1.0 if p[prll] < -1.0 else 1.0)
        theta = np.arcsin(past / entity.size)
        dist_min = np.cos(theta) * entity.size + 0.5 * WALL_WIDTH
    else:
        theta, dist_min = 0.0, entity.size + 0.5 * WALL_WIDTH
    delta = p[perp] - axis_pos
    dist = np.abs(delta)
    mag = CONTACT_FORCE * delta / dist * (np.logaddexp(0, -(dist - dist_min) / k) * k)
    f = np.zeros(2)
    f[perp], f[prll] = np.cos(theta) * mag, np.sin(theta) * np.abs(mag)
    return f


def _walled_world_cls():
    from mpe2._mpe_utils.core import World

    class WalledWorld(World):
        """mpe2 ``World`` plus the four hard walls of the official scenario (and, for ``integrator="mpe1"``,
        the original MPE integration order)."""

        walls = WALLS
        integrator = "mpe1"

        def integrate_state(self, p_force):
            if self.integrator == "mpe2":
                return super().integrate_state(p_force)
            for i, e in enumerate(self.entities):  # original MPE core.py
                if not e.movable:
                    continue
                e.state.p_vel = e.state.p_vel * (1 - self.damping)
                if p_force[i] is not None:
                    e.state.p_vel += (p_force[i] / e.mass) * self.dt
                if e.max_speed is not None:
                    speed = np.sqrt(np.square(e.state.p_vel[0]) + np.square(e.state.p_vel[1]))
                    if speed > e.max_speed:
                        e.state.p_vel = e.state.p_vel / speed * e.max_speed
                e.state.p_pos += e.state.p_vel * self.dt

        def apply_environment_force(self, p_force):
            p_force = super().apply_environment_force(p_force)
            for i, e in enumerate(self.entities):
                if not e.movable:
                    continue
                for orient, axis_pos in self.walls:
                    f = _wall_force_scalar(e, orient, axis_pos)
                    if f is not None:
                        p_force[i] = f + (0.0 if p_force[i] is None else p_force[i])
            return p_force

    return WalledWorld


class DeceptionParallelEnv(ParallelEnv):
    """PettingZoo ``ParallelEnv`` of the same scenario, built on mpe2's ``World`` (slow, reference)."""

    metadata = {"name": "soo_physical_deception_v0", "render_modes": []}

    def __init__(self, mode: str = "deceptive", radius: float = 0.125, episode_length: int = 50,
                 integrator: str = "mpe1"):
        from mpe2._mpe_utils.core import Agent, Landmark

        self.cfg = EnvConfig(mode=mode, radius=radius, episode_length=episode_length, integrator=integrator)
        self.possible_agents = list(AGENT_IDS)
        self.agents = []
        self.world = _walled_world_cls()()
        self.world.integrator = integrator
        self.world.agents = [Agent(), Agent()]
        for i, a in enumerate(self.world.agents):
            a.name, a.adversary, a.silent, a.collide, a.size = AGENT_IDS[i], i == 0, True, False, AGENT_SIZE
        self.world.landmarks = [Landmark(), Landmark()]
        for i, lm in enumerate(self.world.landmarks):
            lm.name, lm.collide, lm.movable, lm.size = f"landmark_{i}", False, False, LANDMARK_SIZE
        self.rng = np.random.default_rng()

    @functools.lru_cache(maxsize=None)
    def observation_space(self, agent):
        d = OBS_DIMS[AGENT_IDS.index(agent)]
        return gymnasium.spaces.Box(-np.inf, np.inf, (d,), np.float32)

    @functools.lru_cache(maxsize=None)
    def action_space(self, agent):
        return gymnasium.spaces.Box(-1.0, 1.0, (ACT_DIM,), np.float32)

    def _arrays(self):
        pos = np.stack([a.state.p_pos for a in self.world.agents])[None]
        lms = np.stack([lm.state.p_pos for lm in self.world.landmarks])[None]
        return pos, lms, np.array([self.goal]), np.array([self.trapped])

    def _obs(self):
        o = _observe(*self._arrays(), self.cfg.radius)
        return {a: o[i][0] for i, a in enumerate(self.agents)}

    def state(self):
        pos, lms, _, _ = self._arrays()
        return np.concatenate([pos.ravel(), lms.ravel()]).astype(np.float32)

    def reset(self, seed=None, options=None):
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        pos, lms, goal = sample_initial_state(self.rng, 1, self.cfg.radius)
        for i, a in enumerate(self.world.agents):
            a.state.p_pos, a.state.p_vel, a.max_speed = pos[0, i].copy(), np.zeros(2), None
            a.state.c = np.zeros(0)
        for i, lm in enumerate(self.world.landmarks):
            lm.state.p_pos, lm.state.p_vel = lms[0, i].copy(), np.zeros(2)
        self.goal, self.t = int(goal[0]), 0
        self.trapped = bool(trapped_at(pos, lms[np.arange(1), 1 - goal])[0])  # the official reset's trap check
        self.world.agents[0].max_speed = 0.0 if self.trapped else None
        self.agents = list(AGENT_IDS)
        return self._obs(), {a: {} for a in self.agents}

    def step(self, actions):
        for i, a in enumerate(self.world.agents):
            a.action.u = SENSITIVITY * np.clip(np.asarray(actions[AGENT_IDS[i]], dtype=np.float64), -1, 1)
            a.action.c = np.zeros(0)
        red = self.world.agents[0]
        self.world.step()
        fake = self.world.landmarks[1 - self.goal].state.p_pos
        if not self.trapped and trapped_at(red.state.p_pos[None, None], fake[None])[0]:
            self.trapped, red.max_speed, red.state.p_vel = True, 0.0, np.zeros(2)
        self.t += 1
        rew = _rewards(*self._arrays(), self.cfg.radius, self.cfg.mode == "deceptive")[0]
        obs = self._obs()
        trunc = self.t >= self.cfg.episode_length
        rewards = {a: float(rew[i]) for i, a in enumerate(self.agents)}
        infos = {a: {"trapped": self.trapped} for a in self.agents}
        terms = {a: False for a in self.agents}
        truncs = {a: trunc for a in self.agents}
        if trunc:
            self.agents = []
        return obs, rewards, terms, truncs, infos
