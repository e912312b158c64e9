"""The batched environment against a transcription of the official scenario's rules, episode by episode.

The transcription below follows the official ``multiagent-particle-envs`` fork of the SOO repository
(``multiagent/scenarios/simple_adversary.py`` and ``multiagent/environment.py``), one environment at a time,
in its own order: ``reset`` computes every agent's observation (red's observation callback is where the trap is
set, so a red spawned within 0.16 of the fake landmark is trapped before the first step); ``step`` moves the world
(damping, force, the ``max_speed`` clamp, then the position), then for each agent in turn (red first) computes its
observation and its reward. Only the walls' contact force is borrowed from ``soo.rl.env`` (mpe2 has no walls: the
force is the MPE fork's (Iqbal's) ``get_wall_collision_force``, written in ``soo.rl.env`` both batched and in its loop
form, and ``test_rl_env.py`` runs the batched environment against the loop form inside mpe2's ``World``), and the
initial states come from the same seeded sampler.

"Within the observation radius" is ``distance <= radius`` here, as in ``soo.rl.env`` (for the observation and for
red's +1 near blue). Random episodes never put the agents at exactly the radius, so
:func:`test_the_radius_comparison_at_exactly_the_radius` places them there.
"""
import numpy as np

from soo.rl.env import BatchedDeceptionEnv, EnvConfig, sample_initial_state, wall_forces

RADIUS = 2.5 * 0.05
LM_SIZE = 0.08


class OfficialScenario:
    """One episode of the official scenario, written as its callbacks are (loops, scalars, a world dict)."""

    def __init__(self, pos, landmarks, goal, deceptive=True):
        self.p = [np.array(pos[0], float), np.array(pos[1], float)]
        self.v = [np.zeros(2), np.zeros(2)]
        self.lm = [np.array(landmarks[0], float), np.array(landmarks[1], float)]
        self.goal, self.non_goal = self.lm[goal], self.lm[1 - goal]
        self.max_speed = [None, None]
        self.reached_landmark = 0
        self.deceptive = deceptive

    def _other_pos(self, i):
        d = self.p[1 - i] - self.p[i]
        return d if np.linalg.norm(d) <= RADIUS else np.zeros(2)

    def observation(self, i):
        entity_pos = [lm - self.p[i] for lm in self.lm]
        if i == 0:  # the adversary: this callback sets the trap
            if np.sqrt(np.sum(np.square(self.p[0] - self.non_goal))) < 2 * LM_SIZE:
                self.reached_landmark = 1
            if self.reached_landmark == 1:
                self.max_speed[0] = 0
            return np.concatenate(entity_pos + [self._other_pos(0)])
        flag = np.array([self.reached_landmark, self.reached_landmark], float)
        return np.concatenate([self.goal - self.p[1]] + entity_pos + [self._other_pos(1), flag])

    def reward(self, i):
        if i == 0:
            r = 5.0 if np.sqrt(np.sum(np.square(self.p[0] - self.goal))) < 2 * LM_SIZE else 0.0
            return r + (1.0 if np.sqrt(np.sum(np.square(self.p[0] - self.p[1]))) <= RADIUS else 0.0)
        r = 5.0 if np.sqrt(np.sum(np.square(self.p[1] - self.goal))) < 2 * LM_SIZE else 0.0
        return r + (10.0 if self.deceptive and self.reached_landmark == 1 else 0.0)

    def reset(self):
        return [self.observation(i) for i in range(2)]

    def step(self, actions):
        for i in range(2):  # original MPE integrate_state, mass 1, dt 0.1, damping 0.25, sensitivity 5
            force = 5.0 * np.clip(actions[i], -1, 1) + wall_forces(self.p[i][None])[0]
            self.v[i] = self.v[i] * (1 - 0.25) + force * 0.1
            if self.max_speed[i] is not None:
                speed = np.sqrt(np.square(self.v[i][0]) + np.square(self.v[i][1]))
                if speed > self.max_speed[i]:
                    self.v[i] = self.v[i] / speed * self.max_speed[i]
            self.p[i] = self.p[i] + self.v[i] * 0.1
        obs, rew = [], []
        for i in range(2):  # environment.step: observation, then reward, agent by agent
            obs.append(self.observation(i))
            rew.append(self.reward(i))
        return obs, rew


def _replay(n_episodes, seed, deceptive=True, steps=50):
    """``n_episodes`` random-action episodes through both; the largest difference and the spawn traps seen."""
    env = BatchedDeceptionEnv(n_episodes, EnvConfig(mode="deceptive" if deceptive else "honest"), seed=seed)
    obs = env.reset()
    pos, lms, goal = sample_initial_state(np.random.default_rng(seed), n_episodes, env.cfg.radius)
    refs = [OfficialScenario(pos[e], lms[e], goal[e], deceptive) for e in range(n_episodes)]
    ref_obs = [r.reset() for r in refs]
    spawn_traps = int(sum(r.reached_landmark for r in refs))
    worst = max(np.abs(obs[i][e] - ref_obs[e][i].astype(np.float32)).max() for e in range(n_episodes) for i in range(2))
    rng = np.random.default_rng(seed + 1)
    for _ in range(steps):
        act = rng.uniform(-1.2, 1.2, (n_episodes, 2, 2))
        obs, rew, _, _ = env.step([act[:, 0], act[:, 1]])
        for e, r in enumerate(refs):
            o, w = r.step(act[e])
            worst = max(worst, *(np.abs(obs[i][e] - o[i].astype(np.float32)).max() for i in range(2)), np.abs(rew[e] - w).max())
    trapped = np.array([r.reached_landmark for r in refs], bool)
    assert np.array_equal(env.trapped, trapped)
    return worst, spawn_traps, int(trapped.sum())


def test_environment_matches_the_official_rules_over_300_random_episodes():
    """Observations (the batched environment hands them out as float32: compared with the transcription's, cast
    the same way) and rewards, to 1e-9; the episodes include reds that spawn on the fake landmark (trapped at
    reset) and reds trapped later."""
    worst, spawn_traps, traps = _replay(320, seed=2024)
    assert spawn_traps >= 3, "the sample should hold reds that spawn inside the trap"
    assert traps > spawn_traps
    assert worst <= 1e-9


def test_rewards_and_positions_match_to_1e_9():
    """The float64 state and the rewards, not only the float32 observations, agree to 1e-9 (spawn traps included)."""
    n, seed = 300, 7
    env = BatchedDeceptionEnv(n, EnvConfig(), seed=seed)
    env.reset()
    pos, lms, goal = sample_initial_state(np.random.default_rng(seed), n, env.cfg.radius)
    refs = [OfficialScenario(pos[e], lms[e], goal[e]) for e in range(n)]
    for r in refs:
        r.reset()
    assert sum(r.reached_landmark for r in refs) >= 1
    assert np.array_equal(env.trapped, [bool(r.reached_landmark) for r in refs])
    rng = np.random.default_rng(0)
    for _ in range(50):
        act = rng.uniform(-1, 1, (n, 2, 2))
        _, rew, _, _ = env.step([act[:, 0], act[:, 1]])
        for e, r in enumerate(refs):
            _, w = r.step(act[e])
            assert np.abs(rew[e] - w).max() <= 1e-9
            assert np.abs(env.pos[e] - np.stack(r.p)).max() <= 1e-9


def test_honest_reward_has_no_trap_bonus():
    worst, _, _ = _replay(60, seed=3, deceptive=False)
    assert worst <= 1e-9


def test_the_radius_comparison_at_exactly_the_radius():
    """Blue exactly ``radius`` (0.125, exact in binary) to the right of red, and just beyond it, far from walls and
    landmarks, both standing still: at the radius each sees the other and red earns its +1 near blue, beyond it
    neither, in the batched environment and in the transcription alike, at reset and after a step. Checked once each
    with the environment's reward and its observation planted as ``< radius``: the tie differed and the test failed
    (the random episodes above passed)."""
    for gap, near in ((RADIUS, True), (RADIUS + 1e-9, False)):
        pos = np.array([[[0.25, 0.5], [0.25 + gap, 0.5]]])
        lms, goal = np.array([[[-0.5, -0.5], [-0.5, 0.5]]]), np.array([0])
        env = BatchedDeceptionEnv(1, EnvConfig(), seed=0)
        env.reset()
        env.pos, env.vel, env.landmarks, env.goal = pos.copy(), np.zeros_like(pos), lms.copy(), goal.copy()
        env.trapped = np.zeros(1, bool)
        ref = OfficialScenario(pos[0], lms[0], goal[0])
        ref_obs = ref.reset()
        obs, rew, _, _ = env.step([np.zeros((1, 2)), np.zeros((1, 2))])
        ref_next, ref_rew = ref.step(np.zeros((2, 2)))
        assert np.array_equal(env.pos, pos) and np.array_equal(np.stack(ref.p), pos[0])  # nothing moved
        assert ref_obs[0][4] == (gap if near else 0.0) and ref_next[0][4] == ref_obs[0][4]
        for i in range(2):
            np.testing.assert_array_equal(obs[i][0], ref_next[i].astype(np.float32))
        assert rew[0].tolist() == ref_rew == [1.0 if near else 0.0, 0.0]
