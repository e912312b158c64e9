"""Round 2 of the RL settings screen: what it declares, its criterion, its configs, the refusal to run what was not
declared, and the chapter's table and glue on partial results."""
import json

import pytest

from soo.rl import book, screen
from soo.rl.config import SETTING_LABELS
from soo.files import read_json


def test_the_committed_declaration_is_the_one_the_code_runs():
    assert read_json(screen.SCREEN_DIR / "declaration_round2.json") == json.loads(json.dumps(screen.DECLARATION_ROUND2))
    assert screen.DECLARATION_ROUND2["settings"] == list(screen.ROUND2_SETTINGS)


@pytest.mark.parametrize("setting,episodes,explore,gamma,envs", [
    ("official", 40_000, 25_000, 0.95, 100), ("official_long", 80_000, 50_000, 0.95, 100),
    ("single_env", 40_000, 25_000, 0.95, 1), ("gamma099", 40_000, 25_000, 0.99, 100),
    ("gamma099_single_env", 40_000, 25_000, 0.99, 1)])
def test_round2_configs_are_the_protocols_own(setting, episodes, explore, gamma, envs):
    """Each row's baselines are the full protocol's baselines at that setting (so a passing setting's protocol reuses
    them); the longer official row doubles the episodes and the exploration, and its fine-tunings stay the protocol's."""
    scfg = screen.round2_config(setting)
    rc = scfg.rl_config("deceptive", 155)
    assert (rc.n_episodes, rc.n_exploration_eps, rc.gamma, rc.num_envs) == (episodes, explore, gamma, envs)
    ft = scfg.finetune_config("soo", 155)
    assert (ft.n_episodes, ft.n_exploration_eps) == (10_000, 25_000)
    assert screen.DECLARATION_ROUND2["baseline_episodes"][setting] == episodes
    assert screen.DECLARATION_ROUND2["n_exploration_eps"][setting] == explore


def test_the_official_settings_key_is_unchanged_by_the_longer_setting():
    """Adding the longer setting leaves every official run's settings (and so the kept runs) as they were."""
    from soo.rl.config import scale_config
    from soo.rl.training import settings_key

    full = scale_config("full")
    assert settings_key(full.rl_config("deceptive", 155)) == "4badec0c436e2390"
    assert settings_key(full.finetune_config("soo", 155)) == "a962b072c83d110b"


def test_round2_criterion_needs_both_parts():
    yes7, yes6 = {"verdict": "yes", "n_better": 7}, {"verdict": "yes", "n_better": 6}
    assert screen.passes_round2(yes7, {"verdict": "yes"})
    assert not screen.passes_round2(yes6, {"verdict": "yes"})  # (i) needs 7 of 8
    assert not screen.passes_round2(yes7, {"verdict": "not resolved"})  # (ii): the blue
    assert not screen.passes_round2({"verdict": "not resolved", "n_better": 8}, {"verdict": "yes"})
    res = {"rows": [{"setting": "official", "passes": False}, {"setting": "gamma099", "passes": True},
                    {"setting": "official_long", "passes": True}]}
    assert screen.chosen_round2(res) == "official_long"  # the declared order, not the order of the rows


def test_round2_refuses_an_undeclared_screen(tmp_path):
    with pytest.raises(SystemExit, match="declaration"):
        screen.main(["--settings", "gamma099", "--screen-dir", str(tmp_path), "--out-dir", str(tmp_path / "o")])
    (tmp_path / "declaration_round2.json").write_text(json.dumps({**screen.DECLARATION_ROUND2, "settings": ["gamma099"]}))
    with pytest.raises(SystemExit, match="declaration"):
        screen.main(["--settings", "gamma099", "--screen-dir", str(tmp_path), "--out-dir", str(tmp_path / "o")])
    with pytest.raises(SystemExit):
        screen.main(["--settings", "gamma2", "--screen-dir", str(tmp_path)])


def _row(setting, deceptive, honest, swap_d, swap_h, passes):
    v = {"verdict": "yes" if passes else "not resolved", "n_better": 8 if passes else 4, "n": 8, "mean_diff": 0.1}
    return {"setting": setting, "trap_rate": {"deceptive": [deceptive] * 8, "honest": [honest] * 8},
            "swap_trap_rate": {"learned_deceptive": [swap_d] * 8, "learned_honest": [swap_h] * 8},
            "disc_return_vs_deceptive_red": {"learned_deceptive": [90.0] * 8, "learned_honest": [100.0] * 8,
                                             "goal": [120.0] * 8},
            "premise": v, "blue": v, "passes": passes, "passes_i": passes, "passes_ii": passes, "runs_trained": 16, "train_wall_s": 600.0, "episodes": 40_000,
            "machine": {"cpu": "cpu", "cpu_count": 2}}


def test_round2_table_and_glue_on_partial_results():
    """Settings not run yet say so; the bottom line names what passed or that none did, and what is still to run."""
    res = {"rows": [_row("official", 0.5, 0.3, 0.5, 0.49, False), _row("gamma099", 0.6, 0.2, 0.6, 0.3, True)],
           "chosen": "gamma099"}
    t = book.screen2_table(res)
    assert len(t) == 5 and (t["deceptive / honest trap %"] == "not run yet").sum() == 3
    assert f"{SETTING_LABELS['official_long']} (80 000 episodes)" in t.index  # the label's own comma kept
    assert t.loc[t.index[0], "deceptive / honest trap %"] == "50.0 / 30.0"
    g = book.glue_rl_screen2(res)
    assert g["rl_screen2_done"] == "2 of 5" and g["rl_screen2_chosen"] == "gamma099"
    assert g["rl_screen2_bottom"].startswith(SETTING_LABELS["gamma099"] + " met both parts")
    assert "3 of 5 declared settings not run yet" in g["rl_screen2_bottom"]
    none = book.glue_rl_screen2({"rows": [_row("official", 0.5, 0.3, 0.5, 0.49, False)], "chosen": None})
    assert none["rl_screen2_bottom"].startswith("none of the 1 setting run so far")
    assert book.glue_rl_screen2(None)["rl_screen2_done"] == "0 of 5"
    every = [_row(x, 0.5, 0.3, 0.5, 0.49, False) for x in screen.DECLARATION_ROUND2["settings"]]
    every[0].update(passes_i=True)
    every[1].update(episodes=80_000)
    all_glue = book.glue_rl_screen2({"rows": every, "chosen": None})
    all_run = all_glue["rl_screen2_bottom"]
    assert all_glue["rl_screen2_i_only"] == (
        f"{SETTING_LABELS['official']}: the baselines differ (not resolved (4 of 8 seeds); 50.0 % against 30.0 %), but "
        "against the deceptive baseline's red its blue traps 50.0 % and the honest baseline's blue 49.0 % "
        "(not resolved (4 of 8 seeds))")
    assert g["rl_screen2_i_only"] == "no setting met part (i) alone"
    assert all_run.startswith("none of the 5 declared settings met both parts of the criterion (part (i), ")
    assert ": 1 of 5; part (ii)" in all_run and "against the same red: 0 of 5)" in all_run
    assert all_run.endswith("failed at the protocol's length and at up to 80 000 episodes of baseline training")
    assert g["rl_screen2_single_env_premise"] == "not run yet" and g["rl_screen2_gamma099_passes"] == "passes"


def test_a_resumed_setting_reports_its_training_time_over_every_sitting(tmp_path):
    """Runs resumed from an earlier sitting's checkpoints keep their own accumulated ``wall_time_s``; the row's time over
    all sittings is those times per stack of runs, over the workers (checked once: ``train_wall_s`` alone, this
    sitting's, would read 8 min for a setting that trained for 111), and the table shows it."""
    from collections import namedtuple

    R = namedtuple("R", "kind seed")
    runs = [R(k, s) for k in ("deceptive", "honest") for s in (1, 2, 3, 4)]
    dirs = {}
    for r in runs:
        d = dirs[r] = tmp_path / f"{r.kind}_{r.seed}"
        d.mkdir()
        (d / "metrics.json").write_text(json.dumps({"wall_time_s": 3000.0 if r.kind == "deceptive" else 1000.0,
                                                     "stacked_runs": 2}))
    got = screen.run_walls(runs, dirs, workers=2)
    assert got["run_wall_s"]["deceptive_seed3"] == 3000.0 and got["run_wall_s"]["honest_seed1"] == 1000.0
    # stacks of 2: two deceptive stacks of 3000 s and two honest of 1000 s, on 2 workers
    assert got["train_wall_s_all_sittings"] == pytest.approx((2 * 3000 + 2 * 1000) / 2)
    row = {"runs_trained": 0, "train_wall_s": 488.0, **got}
    assert book._training_min(row) == "67"
    assert book._training_min({"runs_trained": 0, "train_wall_s": 5.0}) == "kept runs"
    assert book._training_min({"runs_trained": 16, "train_wall_s": 1764.0}) == "29"
    (dirs[runs[0]] / "metrics.json").write_text(json.dumps({}))  # a run without its time: no total claimed
    assert "train_wall_s_all_sittings" not in screen.run_walls(runs, dirs, workers=2)
