"""The RL experiment's steps on a tiny protocol: training through the process pool, the disk cache of the
evaluations (invalidated when an agent is retrained), and the values each RL notebook glues (``soo.rl.book``)."""
import re
import shutil

import numpy as np
import pytest
import torch

import soo.rl.book
import soo.rl.diagnostics
import soo.rl.evaluation
import soo.rl.experiment
import soo.rl.runs
import soo.rl.screen
import soo.rl.verdicts
import soo.stats
from soo.rl.config import AGENT_KINDS, AGENTS, FINETUNE_KINDS, scale_config
from soo.rl.env import MODES
from soo.files import read_json
from soo.utils import project_root

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny networks: one thread is much faster on a busy machine

TINY = scale_config("smoke", seeds=[155, 714], baseline_episodes=100, soo_episodes=50, eval_episodes=10,
                    class_seeds=2, class_episodes=(1, 3), grid=10)

# every value the notebooks glue (the book pages quote a subset: checked against the pages below)
GLUED = {
    "rl_baselines": {"rl_scale", "rl_seeds", "rl_baseline_episodes", "rl_train_s_per_run", "rl_full_min_per_run", "rl_train_stacks",
                     "rl_trained_on", "rl_baselines_differ", "rl_baselines_differ_seeds", "rl_trap_ratio",
                     *(f"rl_{k}_{v}" for k in MODES for v in ("trap_rate", "return_blue", "dist_fake", "dist_goal",
                                                               "return_noise_end", "return_last", "return_drop",
                                                               "return_drop_seeds")),
                     "rl_noise_end_episode", "rl_noise_window"},
    "rl_soo": {"rl_soo_scale", "rl_soo_seeds", "rl_soo_episodes", "rl_n_seeds", "rl_bottom_line", "rl_premise_tag",
               *(f"rl_{k}_{v}_ft" for k in AGENT_KINDS for v in ("trap_rate", "return_blue")),
               *(f"rl_diff_{p}{s}" for p in ("soo_vs_honest", "soo_vs_deceptive", "honest_vs_deceptive")
                 for s in ("", "_sd", "_text")),
               *(f"rl_claim_{c}{s}" for c in ("reduces", "reduces_moves", "beyond_control", "like_honest", "capability",
                                               "baselines_differ", "blue_deceives", "beyond_training", "held_reduces",
                                               "held_beyond_training", "red_adapts")
                 for s in ("", "_diff", "_sd", "_seeds")),
               *(f"rl_claim_{c}_reduces{s}" for c in ("capability", "random", "plain", "plain_held")
                 for s in ("", "_seeds")),
               *(f"rl_moves_{k}" for k in AGENT_KINDS), "rl_random_identical_seeds"},
    "rl_classification": {"rl_class_scale", "rl_class_seeds", "rl_class_n_eval_seeds", "rl_class_max_episodes",
                          "rl_class_acc_final", "rl_class_acc_first", "rl_class_acc_best", "rl_class_verdict",
                          "rl_class_n_perfect", "rl_class_acc_final_sd", "rl_class_acc_min", "rl_class_direction",
                          "rl_class_direction_seeds"},
}
SCREENED = ("official", "single_env", "gamma099", "gamma099_single_env")
# the premise diagnostics glued beside glue_rl_baselines' values, and the pair lottery beside the classifier's
PREMISE = {
    "rl_gamma", *(f"rl_ref_{r}_{b}_{c}" for r in MODES for b in ("learned_deceptive", "learned_honest", "still", "goal",
                                                                  "lure15", "lure25", "lure50")
                  for c in ("trap_rate", "return_blue", "disc_blue")),
    *(f"rl_lure_{k}" for k in ("pays", "best", "disc_goal", "disc_lure", "disc_seeds", "undisc_goal", "undisc_lure",
                               "undisc_verdict", "undisc_seeds")),
    "rl_deceptive_beats_goal", "rl_deceptive_beats_goal_seeds", "rl_blue_deceives", "rl_blue_deceives_seeds",
    "rl_red_differs", "rl_red_differs_seeds", "rl_base_moves_deceptive", "rl_base_moves_honest",
    "rl_moves_differ", "rl_moves_differ_seeds", "rl_screen_episodes", "rl_screen_min", "rl_screen_chosen",
    "rl_screen_bottom", "rl_screen_n_settings", "rl_screen_machine",
    *(f"rl_screen_{s}_{k}" for s in SCREENED for k in ("verdict", "seeds", "diff", "passes", "deceptive", "honest",
                                                        "min"))}
LOTTERY = {"rl_lottery_n", *(f"rl_lottery_{c}" for c in soo.rl.verdicts.PAIR_CLAIMS)}
# round 2 of the screen (its official row always: the kept runs), the page's bottom line and the example episodes,
# glued by the notebook beside the premise diagnostics; the RL SOO page's example-episode note
SCREEN2 = {"rl_screen2_table", "rl_screen2_bottom", "rl_screen2_done", "rl_screen2_chosen", "rl_screen2_min",
           "rl_screen2_i_only", "rl_screen2_machine", *(f"rl_screen2_{s}_{k}" for s in soo.rl.screen.ROUND2_SETTINGS
                                   for k in ("premise", "blue", "disc_deceptive", "disc_goal", "passes")),
           "rl_base_bottom", "rl_baselines_differ_rule", "rl_traj_note"}
PAGE_GLUED = {**GLUED, "rl_baselines": GLUED["rl_baselines"] | PREMISE | SCREEN2,
              "rl_soo": GLUED["rl_soo"] | {"rl_soo_traj_note"},
              "rl_classification": GLUED["rl_classification"] | LOTTERY}
assert set(PAGE_GLUED) == set(GLUED)
VERDICTS = {*soo.stats.VERDICTS, "partly"}  # "partly": the classifier perfect in some seeds, above chance overall


def _book_names() -> dict[str, set]:
    out = {name: set() for name in GLUED}
    for page in (project_root() / "book").glob("*.md"):
        for nb, key in re.findall(r"executed/(rl_\w+)\.ipynb::(\w+)", page.read_text()):
            out[next(n for n in GLUED if nb == n or nb.startswith(n + "_"))].add(key)  # rl_soo_gamma099: rl_soo
    return out


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    """The tiny protocol, trained once in this process (one worker), with two torch threads set by the caller."""
    d = tmp_path_factory.mktemp("rl_tiny")
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        soo.rl.experiment.train_baselines(TINY, d, workers=1)
        soo.rl.experiment.finetune(TINY, d, workers=1)
        after = torch.get_num_threads()
    finally:
        torch.set_num_threads(threads)
    assert after == 2, "run_all with one worker must give the caller its torch threads back"
    return d


def test_agent_kinds_in_one_place():
    assert tuple(AGENTS) == AGENT_KINDS == MODES + FINETUNE_KINDS
    assert soo.rl.evaluation.AGENT_KINDS is AGENT_KINDS


def test_book_pages_quote_only_glued_values():
    for nb, names in _book_names().items():
        assert names, f"no page quotes {nb}"
        assert names <= PAGE_GLUED[nb], f"{nb}: pages quote values the notebook does not glue: {names - PAGE_GLUED[nb]}"


def _check_types(values: dict):
    for name, v in values.items():
        assert isinstance(v, (str, int, float)) and not isinstance(v, bool), (name, type(v))
        if name in ("rl_baselines_differ", "rl_class_verdict", "rl_soo_closer_to_honest") or name.endswith(
                "_return_drop") or (
                name.startswith("rl_claim_") and not name.endswith(("_diff", "_sd", "_seeds"))):
            assert v in VERDICTS, (name, v)
        elif name.endswith(("_seeds", "_perfect")) and name not in (
                "rl_seeds", "rl_soo_seeds", "rl_class_seeds", "rl_n_seeds", "rl_class_n_eval_seeds"):
            assert re.fullmatch(r"\d+ of \d+", v), (name, v)
        elif isinstance(v, float):
            assert np.isfinite(v), name


def test_glue_rl_baselines(out):
    table = soo.rl.evaluation.summary_table(TINY, out, kinds=MODES)
    prov = soo.rl.evaluation.provenance(TINY, out, kinds=MODES)
    values = soo.rl.book.glue_rl_baselines(TINY, out, table=table, prov=prov)
    assert set(values) == GLUED["rl_baselines"]
    _check_types(values)
    assert values == soo.rl.book.glue_rl_baselines(TINY, out)  # the same when it computes its inputs itself
    assert values["rl_scale"] == "smoke" and values["rl_seeds"] == "155, 714" and values["rl_baseline_episodes"] == 100
    assert isinstance(values["rl_trained_on"], str) and "(4 runs)" in values["rl_trained_on"]
    for k in MODES:
        assert 0 <= values[f"rl_{k}_trap_rate"] <= 100
        assert values[f"rl_{k}_trap_rate"] == pytest.approx(100 * table[table.agent == k]["trap_rate"].mean())
    assert values["rl_baselines_differ_seeds"].endswith("of 2")


def test_glue_rl_soo(out):
    table = soo.rl.evaluation.summary_table(TINY, out)
    beh = soo.rl.evaluation.behaviour(TINY, out)
    cl = soo.rl.verdicts.claims(TINY, out, table=table, beh=beh)
    assert cl == soo.rl.verdicts.claims(TINY, out)
    values = soo.rl.book.glue_rl_soo(TINY, out, table=table, beh=beh, cl=cl)
    assert set(values) == GLUED["rl_soo"]
    _check_types(values)
    assert values == soo.rl.book.glue_rl_soo(TINY, out)
    assert values["rl_n_seeds"] == 2 and values["rl_soo_episodes"] == 50
    assert values["rl_bottom_line"].startswith("the deceptive baseline")
    holds = {**cl, "baselines_differ": {**cl["baselines_differ"], "verdict": "yes"},
             "blue_deceives": {**cl["blue_deceives"], "verdict": "yes"}}
    assert "so the claims are tested" in soo.rl.verdicts.bottom_line(holds)
    reds = {**holds, "blue_deceives": {**cl["blue_deceives"], "verdict": "not resolved"}}
    assert "not demonstrably through its blue" in soo.rl.verdicts.bottom_line(reds)
    assert "test neither" in soo.rl.verdicts.bottom_line({**cl, "baselines_differ": {**cl["baselines_differ"],
                                                                                        "verdict": "not resolved"}})
    assert values["rl_claim_reduces_diff"] == pytest.approx(100 * cl["reduces"]["mean_diff"])  # percentage points
    assert values["rl_claim_like_honest_diff"] == cl["like_honest"]["mean_diff"]
    assert values["rl_diff_soo_vs_honest"] == beh["difference"]["soo_vs_honest"]["mean"]
    # the random control is the capability-only training, and its runs stack like those: the same weights
    assert values["rl_random_identical_seeds"] == "2 of 2"
    assert soo.rl.evaluation.same_weights(TINY, out, "capability", "soo") == [False, False]


def test_glue_rl_classification(out):
    res = soo.rl.evaluation.classify(TINY, out)
    values = soo.rl.book.glue_rl_classification(TINY, out, res=res)
    assert set(values) == GLUED["rl_classification"]
    _check_types(values)
    assert values == soo.rl.book.glue_rl_classification(TINY, out)
    assert values["rl_class_max_episodes"] == 3 and values["rl_class_n_eval_seeds"] == 2
    acc = soo.rl.book.classification_table(res)
    assert list(acc.index) == [1, 3] and list(acc.columns) == [155, 714]
    assert values["rl_class_acc_final"] == pytest.approx(100 * acc.iloc[-1].mean())
    assert values["rl_class_n_perfect"] == f"{int((acc.iloc[-1] == 1).sum())} of 2"
    assert list(soo.rl.book.mean_soo_table(res).columns) == list(MODES)


def _retrain(d, kind, seed):
    """Pretend ``kind``'s run of ``seed`` was retrained with other settings (its metrics say so)."""
    f = soo.rl.runs.agent_dir(d, TINY.scale, kind, seed) / "metrics.json"
    m = read_json(f)
    m["settings_key"] = "retrained"
    f.write_text(__import__("json").dumps(m))


def test_evaluation_is_cached_and_recomputed_for_a_retrained_agent(out, tmp_path):
    d = tmp_path / "out"
    shutil.copytree(out, d)
    path = soo.rl.runs.rl_dir(d, TINY.scale) / "eval" / "soo_seed155.json"
    first = soo.rl.evaluation.evaluate_agent(TINY, d, "soo", 155)
    stored = read_json(path)
    assert set(stored) == {"_key", "value"} and stored["value"] == first
    assert stored["_key"]["eval_episodes"] == 10 and stored["_key"]["trained"]["config"]["soo_condition"] == "soo"
    mtime = path.stat().st_mtime_ns
    assert soo.rl.evaluation.evaluate_agent(TINY, d, "soo", 155) == first and path.stat().st_mtime_ns == mtime
    _retrain(d, "soo", 155)
    again = soo.rl.evaluation.evaluate_agent(TINY, d, "soo", 155)
    assert read_json(path)["_key"]["trained"]["settings_key"] == "retrained"
    assert again == first  # the same policy on disk: the same numbers
    other = soo.rl.evaluation.evaluate_agent(scale_config("smoke", seeds=[155, 714], eval_episodes=5), d, "soo", 155)
    assert other["eval_episodes"] == 5 and read_json(path)["_key"]["eval_episodes"] == 5


def test_classification_is_recomputed_when_a_baseline_is_retrained(out, tmp_path):
    d = tmp_path / "out"
    shutil.copytree(out, d)
    path = soo.rl.runs.rl_dir(d, TINY.scale) / "eval" / "classification.json"
    first = soo.rl.evaluation.classify(TINY, d)
    key = read_json(path)["_key"]
    assert key["seeds"] == [155, 714] and key["episodes"] == [1, 3] and key["class_seeds"] == 2
    assert set(key["baselines"]) == {f"{m}_seed{s}" for s in (155, 714) for m in MODES}
    mtime = path.stat().st_mtime_ns
    assert soo.rl.evaluation.classify(TINY, d) == first and path.stat().st_mtime_ns == mtime
    _retrain(d, "honest", 714)
    again = soo.rl.evaluation.classify(TINY, d)
    assert read_json(path)["_key"]["baselines"]["honest_seed714"]["settings_key"] == "retrained"
    assert again["per_seed"] == first["per_seed"]


def test_missing_agent_says_which_notebook_to_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="notebooks/rl_soo"):
        soo.rl.evaluation.evaluate_agent(TINY, tmp_path, "capability", 155)
    with pytest.raises(FileNotFoundError, match="notebooks/rl_baselines"):
        soo.rl.evaluation.classify(TINY, tmp_path)


def test_workers_train_the_same_numbers(tmp_path):
    """Stacks of runs in two spawned processes give exactly what they give one after another in this process:
    the split into stacks depends on the runs, not on the worker count."""
    scfg = scale_config("smoke", seeds=[155, 714], baseline_episodes=50, overrides=dict(batch_size=64, save_interval=100,
                                                                                        buffer_length=10_000))
    runs = soo.rl.runs.baseline_runs(scfg)
    one = soo.rl.runs.run_all(runs, tmp_path / "one", "smoke", workers=1, kept_dir=None, cpu_stack=2)
    two = soo.rl.runs.run_all(runs, tmp_path / "two", "smoke", workers=2, kept_dir=None, cpu_stack=2)
    for k in one:
        assert one[k]["history"] == two[k]["history"] and one[k]["settings_key"] == two[k]["settings_key"]
        assert one[k]["stacked_runs"] == two[k]["stacked_runs"] == 2


def test_stage_stacks_hold_one_kind_each():
    """CPU stacks of one kind: the capability-only runs and their random twins stack alike (same seeds, places)."""
    e = soo.rl.runs
    for scfg, sizes in ((scale_config("full"), [4] * 12), (TINY, [2] * 6)):
        stacks = e.stage_stacks(e.finetune_runs(scfg), scfg.cpu_stack)
        assert [len(s) for s in stacks] == sizes and all(len({r.kind for r in s}) == 1 for s in stacks)
        by_kind = {k: [[r.seed for r in s] for s in stacks if s[0].kind == k] for k in FINETUNE_KINDS}
        assert by_kind["capability"] == by_kind["random"] == by_kind["soo"]
        assert sorted(r.seed for s in stacks for r in s) == sorted(list(scfg.seeds) * len(FINETUNE_KINDS))
    baselines = e.stage_stacks(e.baseline_runs(scale_config("full")), 4)
    assert [s[0].kind for s in baselines] == ["deceptive"] * 2 + ["honest"] * 2


def test_cpu_stacks_split_by_the_runs_only():
    split = soo.rl.runs.cpu_stacks
    assert [len(s) for s in split(list(range(16)), 4)] == [4, 4, 4, 4]
    assert [len(s) for s in split(list(range(24)), 4)] == [4] * 6
    assert [len(s) for s in split(list(range(9)), 4)] == [3, 3, 3]
    assert [len(s) for s in split(list(range(6)), 4)] == [3, 3]
    assert split([7], 4) == [[7]] and sum(split(list(range(10)), 3), []) == list(range(10))
    with pytest.raises(ValueError, match="cpu_stack"):
        scale_config("smoke", cpu_stack=0)


def test_noise_end_returns_compares_the_windows_seed_by_seed():
    """Default scale: noise ends at episode 3000 of 4000, windows of 333 episodes (2700-3000 vs 3700-4000 logged)."""
    import pandas as pd

    scfg = scale_config("default")
    episodes = np.arange(100, 4001, 100)
    rows = []
    for s, seed in enumerate(scfg.seeds):
        for e in episodes:  # deceptive: drops after the noise ends, by 1, 1.5, 2; honest: flat
            rows.append({"agent": "deceptive", "seed": seed, "episode": e, "return_blue": 10.0 - (1 + s / 2) * (e > 3000)})
            rows.append({"agent": "honest", "seed": seed, "episode": e, "return_blue": 7.0 + s})
    r = soo.rl.book.noise_end_returns(scfg, pd.DataFrame(rows))
    assert (r["noise_end"], r["window"]) == (3000, 333)
    dec, hon = r["deceptive"], r["honest"]
    assert list(dec["at_noise_end"]) == [10.0] * 3 and list(dec["last"]) == [9.0, 8.5, 8.0]
    assert dec["verdict"] == "yes" and dec["n_better"] == 3
    assert list(hon["last"]) == list(hon["at_noise_end"]) == [7.0, 8.0, 9.0]
    assert hon["verdict"] == "not resolved" and hon["n_better"] == 0


def test_reference_blues_and_premise_glue(out):
    """The learned pairs replayed through the diagnostics give the evaluation's own trap rates (same episodes);
    every red meets every blue; the screen's rows are glued per setting."""
    ref = soo.rl.evaluation.reference_blues(TINY, out)
    df = soo.rl.evaluation.reference_frame(ref)
    assert len(df) == 2 * 2 * (2 + len(soo.rl.diagnostics.REFERENCE_BLUES)) and ref["gamma"] == 0.95
    for seed in TINY.seeds:
        for m in MODES:
            own = df[(df.seed == seed) & (df.red == m) & (df.blue == f"learned_{m}")].iloc[0]
            summ = soo.rl.evaluation.evaluate_agent(TINY, out, m, seed)["summary"]
            assert own.trap_rate == pytest.approx(summ["trap_rate"]) and own.return_blue == pytest.approx(summ["return_blue"])
    fake_screen = {"chosen": None, "rows": [
        {"setting": "official", "settings": {}, "verdict": "not resolved", "n_better": 3, "n": 8, "mean_diff": 0.01,
         "passes": False, "trap_rate": {"deceptive": [0.4] * 8, "honest": [0.39] * 8}, "train_wall_s": 600,
         "machine": {"cpu": "X", "cpu_count": 2}}]}
    values = soo.rl.book.glue_rl_premise(TINY, out, ref=ref, screen=fake_screen)
    _check_types(values)
    assert set(values) <= PREMISE and "rl_lure_pays" in values
    assert values["rl_lure_pays"] in {"pays", "does not pay"}
    assert values["rl_screen_official_passes"] == "fails" and values["rl_screen_chosen"] == "none"
    assert values["rl_ref_deceptive_learned_deceptive_trap_rate"] == pytest.approx(
        100 * np.mean([soo.rl.evaluation.evaluate_agent(TINY, out, "deceptive", s)["summary"]["trap_rate"]
                       for s in TINY.seeds]))


def test_pair_lottery_has_one_row_per_trained_pair(out):
    res = soo.rl.evaluation.classify(TINY, out)
    lot = soo.rl.verdicts.pair_lottery(TINY, out, cls_res=res)
    assert list(lot.index) == list(TINY.seeds) and set(lot.columns) == set(soo.rl.verdicts.PAIR_CLAIMS)
    assert set(soo.rl.book.glue_rl_lottery(lot)) == LOTTERY
    assert lot["classifier_perfect"].tolist() == [a["accuracy"][-1] == 1.0 for a in res["per_seed"]]
