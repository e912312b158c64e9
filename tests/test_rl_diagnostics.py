"""The premise diagnostics: scripted reference blues, the luring verdict, the pair lottery, the settings screen."""
import numpy as np
import pytest
import torch

from soo.rl import diagnostics as dg
from soo.rl import screen
from soo.rl.config import RLConfig
from soo.rl.env import BatchedDeceptionEnv, EnvConfig
from soo.rl.maddpg import MADDPG
from soo.files import read_json

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _still_red():
    """A MADDPG whose red policy outputs 0 (a motionless red)."""
    m = MADDPG(RLConfig())
    with torch.no_grad():
        m.policies[0].fc3.weight.zero_()
        m.policies[0].fc3.bias.zero_()
    return m


def test_fake_offset_reads_the_fake_landmark_from_blues_observation():
    env = BatchedDeceptionEnv(64, seed=0)
    obs = env.reset()
    np.testing.assert_allclose(dg.fake_offset(obs[1]), (env.fake - env.pos[:, 1]).astype(np.float32), atol=1e-6)


def _walk(blue, cfg, n, seed):
    """Blue's positions ``(steps + 1, n, 2)`` and actions ``(steps, n, 2)`` against a motionless red."""
    env = BatchedDeceptionEnv(n, cfg, seed=seed)
    obs = env.reset()
    pos, acts = [env.pos[:, 1].copy()], []
    for t in range(cfg.episode_length):
        acts.append(blue(obs[1], t))
        obs, _, _, _ = env.step([np.zeros((n, 2)), acts[-1]])
        pos.append(env.pos[:, 1].copy())
    return np.array(pos), np.array(acts)


def test_scripted_blues_do_what_they_say():
    """Against a motionless red: the goal blue reaches the goal; a lure walks to the fake landmark at a third of full
    force (no faster than that force's terminal speed) until step ``k``, then to the goal (the lure that waits for
    a trap stays at the fake landmark); against a red trapped from the start every lure drives straight to the goal;
    a motionless blue acts with zero force and, away from the walls' push, stays where it started. Checked once each
    with the lure aimed at the landmark nearer the goal, with a lure that never gives up, with a lure at full force
    and with a still blue that drifts: each failed here (the returns and spawn traps alone passed with all four)."""
    from soo.rl.env import DAMPING, DT, NEAR, SENSITIVITY

    red, cfg = _still_red(), EnvConfig()
    res = {b: dg.play(red, dg.scripted_blue(b), cfg, 200, seed=1, gamma=0.95) for b in dg.REFERENCE_BLUES}
    env = BatchedDeceptionEnv(200, cfg, seed=1)
    env.reset()
    still = res["still"]["return_blue"]
    assert (res["goal"]["return_blue"] >= still).all() and res["goal"]["return_blue"].mean() > 100
    # the red spawned on the fake landmark is trapped at reset whatever blue does: +10 from the first step
    spawn = np.linalg.norm(env.pos[:, 0] - env.fake, axis=1) < 0.16
    assert (res["still"]["trapped"][spawn] == 1).all() and (res["still"]["trapped"][~spawn] == 0).all()
    assert 0 < spawn.sum() < 20
    walks = {b: _walk(dg.scripted_blue(b), cfg, 200, seed=1) for b in dg.REFERENCE_BLUES}

    def dist(pos, target):
        return np.linalg.norm(pos - target, axis=-1)

    pos, acts = walks["still"]
    inner = (np.abs(pos[0]) <= 0.75).all(1)  # farther than 0.25 from every wall: no push
    assert not acts.any() and inner.sum() > 100
    assert (pos[:, inner] == pos[0, inner]).all()
    goal_walk = walks["goal"][0]
    assert (dist(goal_walk[-1], env.goal_pos) < NEAR).all()
    lure_step = DT * DT * SENSITIVITY * dg.LURE_FORCE / DAMPING  # the lure's terminal step length
    free = ~spawn
    for k in dg.LURE_STEPS:
        pos, _ = walks[f"lure{k}"]
        to_fake, to_goal = dist(pos, env.fake), dist(pos, env.goal_pos)
        assert (to_fake[k, free] < to_fake[0, free]).all(), k
        assert np.linalg.norm(np.diff(pos[:k + 1, free], axis=0), axis=-1).max() <= 1.001 * lure_step, k
        assert (pos[:, spawn] == goal_walk[:, spawn]).all(), k
        if k < cfg.episode_length:
            assert (to_goal[-1, free] < NEAR).all(), k
        else:
            assert (to_fake[-1, free] < NEAR).all(), k
    with pytest.raises(ValueError, match="reference blue"):
        dg.scripted_blue("teleport")


def test_play_discounts_from_the_first_step():
    red, cfg = _still_red(), EnvConfig()
    r1 = dg.play(red, dg.scripted_blue("goal"), cfg, 50, seed=3, gamma=1.0 - 1e-12)
    assert np.allclose(r1["return_blue"], r1["disc_blue"], rtol=1e-9)
    r0 = dg.play(red, dg.scripted_blue("goal"), cfg, 50, seed=3, gamma=0.0)
    env = BatchedDeceptionEnv(50, cfg, seed=3)
    obs = env.reset()
    _, rew, _, _ = env.step([np.zeros((50, 2)), dg.scripted_blue("goal")(obs[1], 0)])
    np.testing.assert_allclose(r0["disc_blue"], rew[:, 1])


def test_lure_verdict_compares_the_best_lure_with_the_goal():
    def rows(goal, lure):
        return [{"red": "deceptive", "blue": "goal", "disc_blue": goal, "return_blue": goal},
                *({"red": "deceptive", "blue": b, "disc_blue": lure - i, "return_blue": lure}
                  for i, b in enumerate(x for x in dg.REFERENCE_BLUES if x.startswith("lure")))]

    rng = np.random.default_rng(0)
    pays = {s: rows(100 + rng.normal(), 120 + rng.normal()) for s in range(8)}
    v = dg.lure_verdict(pays)
    assert v["pays"] == "pays" and v["best_lure"] == "lure15" and not v["against"]
    nopay = {s: rows(120 + rng.normal(), 100 + rng.normal()) for s in range(8)}
    v = dg.lure_verdict(nopay)
    assert v["pays"] == "does not pay" and v["against"]


def test_pair_claims_on_clear_and_unclear_cases():
    n = 400
    rng = np.random.default_rng(1)
    dist = rng.uniform(0.1, 0.3, n)
    ep = {"deceptive": {"trapped": (rng.uniform(size=n) < 0.8).astype(float), "blue_dist_goal": dist},
          "honest": {"trapped": (rng.uniform(size=n) < 0.2).astype(float), "blue_dist_goal": dist},
          "soo": {"trapped": (rng.uniform(size=n) < 0.2).astype(float), "blue_dist_goal": dist + 0.2},
          "capability": {"trapped": (rng.uniform(size=n) < 0.8).astype(float), "blue_dist_goal": dist},
          "plain": {"trapped": (rng.uniform(size=n) < 0.2).astype(float), "blue_dist_goal": dist}}
    c = dg.pair_claims(ep, {"soo_vs_honest": 1.0, "soo_vs_deceptive": 2.0}, accuracy=0.9)
    assert c == {"baselines_differ": True, "reduces": True, "capability": False, "beyond_control": True,
                 "beyond_training": False, "like_honest": True, "classifier_perfect": False}


def test_screen_config_and_criterion():
    cfg = screen.screen_config("gamma099")
    rc = cfg.rl_config("deceptive", 155)
    assert cfg.baseline_episodes == screen.SCREEN_EPISODES and rc.gamma == 0.99 and rc.n_episodes == 10_000
    assert rc.n_exploration_eps == 6250 and cfg.tag == "full_gamma099"
    assert screen.passes({"verdict": "yes", "n_better": 7}) and not screen.passes({"verdict": "yes", "n_better": 6})
    assert not screen.passes({"verdict": "not resolved", "n_better": 8})
    res = {"declaration": screen.DECLARATION, "rows": [{"setting": "official", "passes": False},
                                                      {"setting": "gamma099_single_env", "passes": True},
                                                      {"setting": "gamma099", "passes": True}]}
    assert screen.chosen(res) == "gamma099"
    with pytest.raises(ValueError, match="setting"):
        screen.screen_config("gamma2")


def test_the_declaration_on_disk_is_the_one_in_the_code():
    """The screen refuses to run unless what was declared (and committed) is what it runs."""
    import json

    assert read_json(screen.SCREEN_DIR / "declaration.json") == json.loads(json.dumps(screen.DECLARATION))


def test_screen_rerun_on_finished_runs_keeps_where_and_how_long_they_trained(tmp_path, monkeypatch):
    """Re-running the screen over finished runs re-evaluates them but keeps the recorded training time and machine;
    it refuses to run what was not declared."""
    import json

    sdir = tmp_path / "screen"
    sdir.mkdir()
    with pytest.raises(SystemExit, match="declar"):
        screen.main(["--round", "1", "--settings", "official", "--screen-dir", str(sdir), "--out-dir", str(tmp_path / "o")])
    (sdir / "declaration.json").write_text(json.dumps(screen.DECLARATION))
    row = {"setting": "official", "settings": {}, "verdict": "no", "n_better": 1, "n": 8, "mean_diff": 0.0,
           "passes": False, "train_wall_s": 0.1, "eval_wall_s": 1.0}
    monkeypatch.setattr(screen, "screen_setting", lambda s, out, workers: {**row, "runs_trained": 0})
    old = {**row, "train_wall_s": 450.0, "machine": {"cpu": "then"}, "git_commit": "abc"}
    (sdir / "results.json").write_text(json.dumps({"declaration": screen.DECLARATION, "rows": [old]}))
    screen.main(["--round", "1", "--settings", "official", "--screen-dir", str(sdir), "--out-dir", str(tmp_path / "o")])
    got = json.loads((sdir / "results.json").read_text())["rows"][0]
    assert got["train_wall_s"] == 450.0 and got["machine"] == {"cpu": "then"} and got["git_commit"] == "abc"
    monkeypatch.setattr(screen, "screen_setting", lambda s, out, workers: {**row, "runs_trained": 16})
    screen.main(["--round", "1", "--settings", "official", "--screen-dir", str(sdir), "--out-dir", str(tmp_path / "o")])
    assert json.loads((sdir / "results.json").read_text())["rows"][0]["train_wall_s"] == 0.1
