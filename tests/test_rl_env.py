"""The modified Physical Deception environment: API, batched/ParallelEnv parity, physics, rewards."""
import numpy as np
import pytest
from pettingzoo.test import parallel_api_test

from soo.rl.env import (AGENT_IDS, NEAR, BatchedDeceptionEnv, DeceptionParallelEnv, EnvConfig, physics_step,
                        wall_forces)


def test_parallel_api():
    parallel_api_test(DeceptionParallelEnv(), num_cycles=120)


@pytest.mark.parametrize("seed,push,integrator", [(3, 0.0, "mpe1"), (11, 1.0, "mpe1"), (42, 1.0, "mpe1"),
                                                   (5, 1.0, "mpe2")])
def test_batched_matches_parallel_env(seed, push, integrator):
    """Same seed and actions -> identical observations and rewards (``push`` drives agents into walls)."""
    ref = DeceptionParallelEnv(mode="deceptive", integrator=integrator)
    obs, _ = ref.reset(seed=seed)
    env = BatchedDeceptionEnv(1, EnvConfig(mode="deceptive", integrator=integrator), seed=seed)
    bobs = env.reset()
    rng = np.random.default_rng(seed)
    direction = rng.uniform(-1, 1, (2, 2))
    walls_hit = False
    for t in range(50):
        a = np.clip(rng.uniform(-1, 1, (2, 2)) + push * direction, -1, 1)
        obs, rew, term, trunc, _ = ref.step({AGENT_IDS[0]: a[0], AGENT_IDS[1]: a[1]})
        bobs, brew, done, _ = env.step([a[:1], a[1:]])
        walls_hit |= bool(np.abs(env.pos).max() > 0.8)
        for i, ag in enumerate(AGENT_IDS):
            np.testing.assert_allclose(obs[ag], bobs[i][0], rtol=0, atol=1e-6)
            assert rew[ag] == brew[0, i]
        assert trunc[AGENT_IDS[0]] == done
    assert done
    if push:
        assert walls_hit


def test_physics_matches_mpe2_world_without_walls():
    from mpe2._mpe_utils.core import Agent, World

    world = World()
    world.agents = [Agent(), Agent()]
    rng = np.random.default_rng(0)
    pos, vel = rng.uniform(-0.5, 0.5, (2, 2)), rng.uniform(-0.3, 0.3, (2, 2))
    for i, a in enumerate(world.agents):
        a.collide, a.silent = False, True
        a.state.p_pos, a.state.p_vel = pos[i].copy(), vel[i].copy()
    for _ in range(30):
        u = rng.uniform(-5, 5, (2, 2))
        for i, a in enumerate(world.agents):
            a.action.u = u[i]
        world.step()
        pos, vel = physics_step(pos, vel, u, walls=False, integrator="mpe2")
        np.testing.assert_allclose(pos, [a.state.p_pos for a in world.agents], atol=1e-12)
        np.testing.assert_allclose(vel, [a.state.p_vel for a in world.agents], atol=1e-12)


def test_walls_hold_at_full_speed():
    env = BatchedDeceptionEnv(4, seed=0)
    env.reset()
    push = np.array([[1, 1], [-1, 1], [1, -1], [-1, -1]], float)
    for _ in range(50):
        env.step([push, push])
    assert np.abs(env.pos).max() < 1.0


def test_walls_push_inward():
    f = wall_forces(np.array([[0.95, 0.0], [0.0, -0.95], [0.0, 0.0]]))
    assert f[0, 0] < 0 and f[1, 1] > 0 and np.allclose(f[2], 0, atol=1e-12)


def _env_at(mode, red, blue, goal_pos, fake_pos):
    env = BatchedDeceptionEnv(1, EnvConfig(mode=mode), seed=0)
    env.reset()
    env.pos[0] = [red, blue]
    env.landmarks[0] = [goal_pos, fake_pos]
    env.goal[0] = 0
    return env


@pytest.mark.parametrize("mode,bonus", [("deceptive", 10.0), ("honest", 0.0)])
def test_rewards_trap_bonus_only_in_deceptive_mode(mode, bonus):
    # red sits on the fake landmark, blue on the goal, they are far apart
    env = _env_at(mode, red=[-0.5, -0.5], blue=[0.5, 0.5], goal_pos=[0.5, 0.5], fake_pos=[-0.5, -0.5])
    obs, rew, _, info = env.step([np.zeros((1, 2)), np.zeros((1, 2))])
    assert info["trapped"][0]
    assert rew[0, 0] == 0.0  # red: not at the goal, not near blue
    assert rew[0, 1] == 5.0 + bonus
    np.testing.assert_array_equal(obs[1][0, 8:], [1.0, 1.0])  # trapped flag in blue's observation
    # red stays frozen whatever it does
    before = env.pos[0, 0].copy()
    env.step([np.ones((1, 2)), np.zeros((1, 2))])
    np.testing.assert_array_equal(env.pos[0, 0], before)


def test_red_rewards_and_observation_radius():
    env = _env_at("deceptive", red=[0.5, 0.5], blue=[0.55, 0.5], goal_pos=[0.5, 0.5], fake_pos=[-0.5, -0.5])
    obs, rew, _, info = env.step([np.zeros((1, 2)), np.zeros((1, 2))])
    assert not info["trapped"][0]
    assert rew[0, 0] == 6.0 and rew[0, 1] == 5.0  # red: goal + near blue; blue: goal, no bonus
    np.testing.assert_allclose(obs[0][0, 4:], [0.05, 0.0], atol=1e-6)  # blue - red
    np.testing.assert_allclose(obs[1][0, 6:8], [-0.05, 0.0], atol=1e-6)  # red - blue
    far = _env_at("deceptive", red=[0.5, 0.5], blue=[0.5, 0.3], goal_pos=[0.0, 0.0], fake_pos=[-0.5, -0.5])
    obs, rew, _, _ = far.step([np.zeros((1, 2)), np.zeros((1, 2))])
    assert np.all(obs[0][0, 4:] == 0) and np.all(obs[1][0, 6:8] == 0) and rew.sum() == 0


def test_spawn_within_radius_and_seeded():
    env = BatchedDeceptionEnv(500, seed=1)
    obs = env.reset()
    d = np.linalg.norm(env.pos[:, 0] - env.pos[:, 1], axis=1)
    assert np.all(d <= 0.125 + 1e-12)
    obs2 = BatchedDeceptionEnv(500, seed=1).reset()
    np.testing.assert_array_equal(obs[1], obs2[1])
    assert np.abs(env.landmarks).max() <= 0.825 and NEAR == pytest.approx(0.16)


@pytest.mark.parametrize("kwargs,name", [({"mode": "sneaky"}, "mode"), ({"radius": 0.0}, "radius"),
                                         ({"radius": -1.0}, "radius"), ({"episode_length": 0}, "episode_length"),
                                         ({"integrator": "rk4"}, "integrator")])
def test_bad_env_config(kwargs, name):
    with pytest.raises(ValueError, match=name):
        EnvConfig(**kwargs)
