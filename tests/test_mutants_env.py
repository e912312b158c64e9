"""The environment's trap and reward rules at their boundaries and over several environments at once, and the
batched environment's reset and action handling (``soo.rl.env``)."""
import numpy as np
import pytest

from soo.rl.env import NEAR, BatchedDeceptionEnv, EnvConfig, _rewards, trapped_at


def test_the_trap_is_strictly_within_near_of_the_fake_landmark_in_each_environment():
    """The official rule is ``distance < 2 * landmark size``: red exactly 0.16 away is not trapped."""
    fake = np.array([[NEAR, 0.0], [0.0, 0.0], [0.5, 0.5], [0.3, -0.2]])
    red = np.array([[0.0, 0.0], [0.0, NEAR * 0.999], [0.5, 0.5 + NEAR], [0.9, 0.9]])
    pos = np.stack([red, np.zeros_like(red)], 1)
    np.testing.assert_array_equal(trapped_at(pos, fake), [False, True, False, False])


def test_rewards_of_several_environments_each_by_its_own_state():
    """Three environments at once (each its own distances, not one norm over all of them), with the boundaries of
    the rules: the goal counts strictly within 0.16 (as the trap), blue is near red at exactly the radius (as red
    sees it in its observation)."""
    r = 0.125
    # env 0: red exactly 0.16 from the goal, blue exactly at the radius from red, trapped
    # env 1: red and blue on the goal, trapped; env 2: nothing near, not trapped
    pos = np.array([[[0.0, 0.0], [0.0, r]],
                    [[0.5, 0.5], [0.5, 0.5]],
                    [[-0.5, 0.5], [0.5, -0.5]]])
    landmarks = np.array([[[NEAR, 0.0], [-0.7, -0.7]],
                          [[0.7, 0.7], [0.5, 0.5]],
                          [[0.0, 0.0], [0.7, 0.0]]])
    goal = np.array([0, 1, 0])
    trapped = np.array([True, True, False])
    rew = _rewards(pos, landmarks, goal, trapped, r, True)
    np.testing.assert_array_equal(rew, [[1.0, 10.0], [6.0, 15.0], [0.0, 0.0]])
    assert rew.dtype == np.float64
    # one reward mode per environment (stacked runs): the trap bonus only where deceptive
    rew = _rewards(pos, landmarks, goal, trapped, r, np.array([False, True, True]))
    np.testing.assert_array_equal(rew[:, 1], [0.0, 15.0, 0.0])
    # blue exactly 0.16 from the goal earns nothing for it
    pos[2, 1] = [NEAR, 0.0]
    assert _rewards(pos, landmarks, goal, trapped, r, True)[2, 1] == 0.0
    pos[2, 1] = [NEAR * 0.999, 0.0]
    assert _rewards(pos, landmarks, goal, trapped, r, True)[2, 1] == 5.0


def test_reset_with_a_seed_starts_the_seeds_episode_again():
    """``reset(seed)`` draws the same initial state as a new environment with that seed, however the environment
    was seeded and stepped before."""
    env = BatchedDeceptionEnv(6, seed=1)
    env.reset()
    env.step([np.ones((6, 2)), -np.ones((6, 2))])
    first = env.reset(seed=7)
    state = (env.pos.copy(), env.landmarks.copy(), env.goal.copy(), env.trapped.copy())
    fresh = BatchedDeceptionEnv(6, seed=7)
    again = fresh.reset()
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(state, (fresh.pos, fresh.landmarks, fresh.goal, fresh.trapped)):
        np.testing.assert_array_equal(a, b)
    env.reset(seed=7)
    np.testing.assert_array_equal(env.pos, state[0])


def _trajectory(actions_of, steps=6, n=5, seed=3):
    env = BatchedDeceptionEnv(n, EnvConfig(), seed=seed)
    env.reset()
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(steps):
        a = rng.uniform(-3, 3, (2, n, 2))
        env.step([actions_of(a[0]), actions_of(a[1])])
        out.append(env.pos.copy())
    return np.stack(out)


def test_actions_are_clipped_to_the_unit_box():
    """An action beyond [-1, 1] on either side acts as the nearest action inside it."""
    np.testing.assert_array_equal(_trajectory(lambda a: a), _trajectory(lambda a: np.clip(a, -1, 1)))


def test_float32_actions_move_agents_as_their_float64_values():
    """Policies output float32: the environment computes in float64 whatever the actions' type."""
    np.testing.assert_array_equal(_trajectory(lambda a: np.clip(a, -1, 1).astype(np.float32)),
                                  _trajectory(lambda a: np.clip(a, -1, 1).astype(np.float32).astype(np.float64)))


@pytest.mark.parametrize("mode", ["deceptive", "honest"])
def test_a_red_spawned_on_the_fake_landmark_is_trapped_from_the_start(mode):
    """The official reset runs red's trap check: red spawned within 0.16 of the fake landmark is frozen from
    step 0, blue's first observation shows it, and in the deceptive mode blue earns the bonus from the first step."""
    env = BatchedDeceptionEnv(400, EnvConfig(mode=mode), seed=11)
    obs = env.reset()
    trapped = np.linalg.norm(env.pos[:, 0] - env.fake, axis=1) < NEAR
    assert trapped.any() and not trapped.all()
    np.testing.assert_array_equal(env.trapped, trapped)
    np.testing.assert_array_equal(obs[1][:, 8], trapped.astype(np.float32))
    red = env.pos[:, 0].copy()
    _, rew, _, info = env.step([np.ones((400, 2)), np.zeros((400, 2))])
    np.testing.assert_array_equal(env.pos[trapped, 0], red[trapped])
    assert np.all(env.pos[~trapped, 0] != red[~trapped])
    bonus = rew[:, 1] - 5.0 * (np.linalg.norm(env.pos[:, 1] - env.goal_pos, axis=1) < NEAR)
    assert info["trapped"][trapped].all()  # some more reach the fake landmark in the step
    np.testing.assert_array_equal(bonus, 10.0 * info["trapped"] if mode == "deceptive" else 0.0)
