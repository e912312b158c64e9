"""The LLM paper protocol kept with the book (``soo.llm.full``, ``make llm-full``): what a kept run holds, that a
second sitting computes nothing, and the staleness check (on a smoke set and on the kept set itself)."""
import json

import pytest

from soo.llm import full as F
from soo.llm import config as C
from soo.files import read_json
from soo.llm import scales


@pytest.fixture(scope="module")
def kept(tmp_path_factory):
    root = tmp_path_factory.mktemp("llm_full")
    argv = ["--scale", "smoke", "--only", "soo_mse", "generic", "--seeds", "0", "--precision", "fp32",
            "--out-dir", str(root / "work"), "--kept-dir", str(root / "kept"), "--workers", "1"]
    assert F.main(argv) == 0
    return root, argv


def test_a_kept_run_holds_per_item_records_and_a_manifest(kept):
    root, _ = kept
    k = root / "kept"
    assert sorted(p.name for p in k.iterdir() if p.is_dir()) == ["base", "generic__seed0", "soo_mse__seed0"]
    res = F.kept_result("soo_mse__seed0", k)
    sc = F.full_config("fp32", seeds=[0], scale="smoke")
    assert len(res["records"]) == 2 * sc.n_soo_eval and len(res["generate_records"]) == 2 * sc.n_generate
    assert {"label", "logp_deceptive", "logp_honest", "order", "index"} <= set(res["records"][0])
    assert {"label", "response"} <= set(res["generate_records"][0])
    man = F.kept_manifest("soo_mse__seed0", k)
    assert {"settings_key", "git_commit", "precision", "machine", "wall_s", "condition", "seed"} <= set(man)
    assert man["precision"] == "fp32" and man["condition"] == "soo_mse" and man["seed"] == 0
    assert "<start model>" == man["settings_key"]["config"]["model"]  # no machine folder in a kept key
    assert str(root) not in json.dumps(man["settings_key"])
    import torch
    from safetensors.torch import load_file

    ad = load_file(k / "soo_mse__seed0" / "adapter" / "adapter_model.safetensors")
    assert ad and all(v.dtype == torch.float16 for v in ad.values())
    assert (k / "soo_mse__seed0" / "adapter" / "adapter_config.json").exists() and not (k / "base" / "adapter").exists()
    digests = {F.kept_manifest(n, k)["organism_digest"] for n in ("base", "soo_mse__seed0", "generic__seed0")}
    assert len(digests) == 1 and len(digests.pop()) == 16  # one organism, named by its weights
    mech = read_json(k / "soo_mse__seed0" / "mechanism.json")
    assert set(mech) == {"spread", "self_other_gap", "name_gap"} and read_json(k / "base" / "mechanism.json")
    prot = read_json(k / "protocol.json")
    assert len(prot["sittings"]) == 1 and prot["runs_computed_all_sittings"] == 3
    last = prot["sittings"][-1]
    assert last["finished"] and last["runs_computed"] == 3 and last["machine"]["cpu_count"] >= 1
    assert prot["wall_time_s_all_sittings"] == last["wall_time_s"] > 0


def test_protocol_json_keeps_every_sitting_and_a_stopped_one_so_far(tmp_path):
    """A sitting writes its time after every kept batch: one stopped midway keeps what it did; the next adds its own."""
    import time

    names = [("base", None)]
    first = F.Sitting(tmp_path / "protocol.json", ["--seeds", "0"], names, "fp32", 2, "cpu", time.perf_counter() - 10)
    first.write(1)  # then the sitting is stopped
    second = F.Sitting(tmp_path / "protocol.json", [], names, "fp32", 2, "cpu", time.perf_counter() - 5)
    second.write(2, finished=True)
    prot = read_json(tmp_path / "protocol.json")
    assert [(x["runs_computed"], x["finished"]) for x in prot["sittings"]] == [(1, False), (2, True)]
    assert prot["sittings"][0]["command"] == "python -m soo.llm.full --seeds 0"
    assert prot["runs_computed_all_sittings"] == 3 and prot["wall_time_s_all_sittings"] >= 15


def test_a_second_sitting_computes_nothing_even_without_its_work_folder(kept, capsys, monkeypatch):
    """Every run kept and current: the command reads nothing and trains nothing (not even the organism)."""
    import shutil

    from soo.llm import experiment as X

    root, argv = kept
    shutil.rmtree(root / "work")
    monkeypatch.setattr(X, "start_model", lambda *a, **k: pytest.fail("the organism was built again"))
    assert F.main(argv) == 0
    assert "all 3 runs are kept and current" in capsys.readouterr().out


def test_staleness_is_found_for_a_changed_setting(kept, monkeypatch):
    """Current: no stale run. A changed evaluation size (planted in the smoke preset) makes every kept run stale;
    a changed SOO lr only the SOO runs and not the start model's row."""
    import dataclasses

    root, _ = kept
    assert F.stale_runs(root / "kept") == []
    smoke = scales.PRESETS["smoke"]
    monkeypatch.setitem(scales.PRESETS, "smoke", dataclasses.replace(smoke, n_soo_eval=smoke.n_soo_eval + 1))
    assert F.stale_runs(root / "kept") == ["base", "generic__seed0", "soo_mse__seed0"]
    monkeypatch.setitem(scales.PRESETS, "smoke", smoke)
    tiny = C.MODEL_PRESETS["tiny-random"]
    monkeypatch.setitem(C.MODEL_PRESETS, "tiny-random", dataclasses.replace(tiny, soo=dataclasses.replace(tiny.soo, lr=0.5)))
    assert F.stale_runs(root / "kept") == ["generic__seed0", "soo_mse__seed0"]


def test_bad_arguments_are_refused_before_any_compute(tmp_path):
    with pytest.raises(ValueError, match="only"):
        F.main(["--scale", "smoke", "--only", "soo", "--out-dir", str(tmp_path), "--kept-dir", str(tmp_path)])
    assert not any(tmp_path.iterdir())


@pytest.mark.skipif(not F.KEPT_DIR.exists(), reason="no LLM protocol kept yet (make llm-full)")
def test_the_kept_set_matches_the_code():
    """Every run kept in book/data/llm_full holds the settings key the current code computes for it."""
    assert F.stale_runs() == []


def test_the_ladder_is_read_from_a_kept_set_and_judged_by_the_one_rule(kept):
    """The SOO page's ladder from a (smoke) kept set: a row per rung that has runs, in the ladder's order from the
    start model, the verdict against SOO by the paired bootstrap, and a bottom line that names SOO's per-order rates;
    an empty kept set says it is not computed."""
    from soo.llm import ladder as K

    root, _ = kept
    ladder = K.kept_ladder(root / "kept")
    assert ladder["n_kept"] == 3 and ladder["n_expected"] == 1 + 6 * 5
    t = K.ladder_table(ladder)
    assert list(t.index) == ["Start (the organism)", C.CONDITIONS["generic"], C.CONDITIONS["soo_mse"]]
    assert t.loc[C.CONDITIONS["generic"], "vs SOO (MSE)"] in {"lower than", "higher than", "not clearly different from"}
    g = K.glue_llm_full(ladder)
    assert g["llm_full_kept"] == "3 of 31" and "paper order" in g["llm_full_bottom"]
    soo = ladder["per_seed"][ladder["per_seed"].condition == "soo_mse"].iloc[0]
    assert "(1 seed, 3 of 31 runs kept)" in g["llm_full_bottom"]
    assert (f"By greedy generation (the paper's measure) SOO (MSE) left {soo['generate mean']:.1f} % counterbalanced, "
            f"{soo['generate paper']:.1f} % in the paper's order") in g["llm_full_bottom"]
    empty = K.glue_llm_full(K.kept_ladder(root / "nothing"))
    assert empty["llm_full_bottom"].startswith("not computed yet (0 of 31")


def test_the_kept_protocol_is_the_paper_way_row_of_the_comparison_with_the_paper(kept):
    """The SOO page compares the paper with the kept set measured the paper's way (paper order, greedy generation, on
    every kept scenario), the organism before and SOO after, and says the mirrored order's rates beside it."""
    from soo.llm import ladder as K
    from soo.llm.book import PAPER_WAY

    root, _ = kept
    ladder = K.kept_ladder(root / "kept")
    ps = ladder["per_seed"]
    soo, base = ps[ps.condition == "soo_mse"].iloc[0], ps[ps.condition == "base"].iloc[0]
    sc = F.full_config("fp32", seeds=[0], scale="smoke")
    rows = K.comparison_rows(ladder)
    assert rows[0]["measured as"] == f"{PAPER_WAY}, {sc.n_generate} scenarios"
    assert rows[1]["measured as"].endswith(f"{sc.n_soo_eval} per order")
    assert (rows[0]["baseline"], rows[0]["soo"]) == (f"{base['generate paper']:.1f}", f"{soo['generate paper']:.2f}")
    assert (rows[1]["baseline"], rows[1]["soo"]) == (f"{base['mean']:.1f}", f"{soo['mean']:.2f}")  # one seed: no SD
    assert all(r["source"] == "ours, the paper's protocol (kept), 1 seed" for r in rows)
    said = K.glue_llm_full(ladder)["llm_full_paper_way"]
    assert said.startswith(f"SOO (MSE) left {soo['generate paper']:.1f} % deceptive answers (1 seed) against "
                           f"{base['generate paper']:.1f} % before")
    assert said.endswith(f"{soo['generate mirrored']:.1f} % against {base['generate mirrored']:.1f} %")
    nothing = K.kept_ladder(root / "nothing")
    assert K.comparison_rows(nothing) == []
    assert K.glue_llm_full(nothing)["llm_full_paper_way"].startswith("the paper's protocol is not computed yet")


def test_drop_shares():
    import pandas as pd

    from soo.llm import ladder as K

    ps = pd.DataFrame({"condition": ["base", "soo_mse", "soo_mse", "lm", "generic"], "mean": [90, 10, 20, 30, 95]})
    shares = K.drop_shares(ps)
    assert shares == {"soo_mse": 1.0, "lm": 0.8, "generic": -5 / 75}
    assert K.drop_shares(ps.replace({"mean": {10: 95, 20: 95}})) == {}  # SOO did not lower the rate


def test_ladder_marks_are_the_data_files_numbers():
    from soo.llm import ladder as K
    from soo.llm import scenarios as S

    marks = K.ladder_marks()
    lad = S.replications()["marcobaumann/paper-soo-overlap"]["control_ladder"]
    assert sorted(marks["marcobaumann/paper-soo-overlap (Mistral-7B, 5 seeds)"].values()) == sorted(
        v["mean"] for v in lad.values())
    paper = [r for r in S.paper_results()["llm_main_scenario"] if r["model"] == "mistralai/Mistral-7B-Instruct-v0.2"]
    assert marks["paper (Mistral-7B)"] == {"base": paper[0]["baseline"], "soo_mse": paper[0]["soo_mean"]}


def test_answer_kinds_per_condition():
    from soo.llm import ladder as K

    def run(cond, answers):
        return {"condition": cond, "generate_records": [
            {"response": a, "deceptive_room": "attic", "honest_room": "kitchen"} for a in answers]}

    share, ex = K.answer_kinds([run("base", ["the attic."] * 4),
                                   run("soo_mse", ["the attic.", "the kitchen.", "the attic or the kitchen", "zzz"])])
    assert list(share.index) == ["Start", C.CONDITIONS["soo_mse"]]
    assert share.loc["Start", "deceptive room first"] == 100.0
    assert share.loc[C.CONDITIONS["soo_mse"]].to_dict() == {"deceptive room first": 25.0, "honest room first": 25.0,
                                                           "both rooms": 25.0, "neither room": 25.0, "refusal": 0.0}
    assert set(ex["kind"]) == {"deceptive room first", "honest room first", "both rooms", "neither room"}


def test_workers_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="workers"):
        F.main(["--scale", "smoke", "--workers", "0", "--out-dir", str(tmp_path), "--kept-dir", str(tmp_path)])


def test_runs_are_computed_seed_by_seed_soo_first_then_in_ladder_order():
    """A set built over several sittings holds whole ladders: every rung of seed 0 before any run of seed 1, and
    within a seed SOO (MSE) first (what every rung is compared with), then the ladder from the start model up."""
    from soo.llm.config import LADDER, SooRun

    todo = [(f"{c}_{s}", SooRun(c, s)) for c in LADDER for s in (0, 1, 2)]  # condition-major, as run_names lists
    got = [(r.seed, r.condition) for _, r in F.seed_major(todo, LADDER)]
    within = ["soo_mse"] + [c for c in LADDER if c != "soo_mse"]
    assert got == [(s, c) for s in (0, 1, 2) for c in within]
    assert within[1:3] == ["generic", "lm"]


def test_the_quick_rerun_is_compared_verdict_by_verdict_with_the_kept_protocol(kept):
    """Each condition both sets have, against the start model and against SOO, by the one rule on each set's own
    items; a planted disagreement (the quick rerun's SOO answers all made deceptive) is named."""
    import copy

    from soo.llm import ladder as K

    root, _ = kept
    ladder = K.kept_ladder(root / "kept")
    same = K.quick_vs_kept(ladder["results"], ladder)
    t = same["llm_quick_vs_kept"]
    assert list(t.index) == [f"{C.CONDITIONS['generic']} vs Start", f"{C.CONDITIONS['soo_mse']} vs Start",
                             f"{C.CONDITIONS['soo_mse']} vs {C.CONDITIONS['generic']}"]
    assert (t["agree"] == "yes").all() and same["llm_quick_agrees"].startswith("3 of 3 of the quick rerun's verdicts agree")
    planted = copy.deepcopy(ladder["results"])
    for r in planted:
        for x in r["records"]:
            x["label"] = "deceptive" if r["condition"] == "soo_mse" else "honest"
    moved = K.quick_vs_kept(planted, ladder)
    assert moved["llm_quick_vs_kept"].loc[f"{C.CONDITIONS['soo_mse']} vs Start", "quick rerun"] == "higher than"
    assert "they differ on" in moved["llm_quick_agrees"]
    assert K.quick_vs_kept(planted, K.kept_ladder(root / "nothing"))["llm_quick_agrees"].startswith(
        "not compared yet")


def test_the_ladder_figure_draws_both_orders_per_rung_and_the_marks_on_the_paper_bar(kept):
    """Per rung with runs, a paper-order bar and a hatched mirrored bar at the seeds' means (a drop in one order only
    shows as one bar falling); other studies' marks sit on the paper-order bar."""
    import matplotlib

    matplotlib.use("Agg")
    from soo.llm import figures
    from soo.llm import ladder as K

    root, _ = kept
    ps = K.kept_ladder(root / "kept")["per_seed"]
    ax = figures.plot_ladder(ps, {"study": {"soo_mse": 17.0}}, C.LADDER)
    bars = [(round(p.get_x() + p.get_width() / 2, 2), p.get_height(), bool(p.get_hatch())) for p in ax.patches]
    rungs = ["base", *C.LADDER]
    for c in ("base", "generic", "soo_mse"):
        row = ps[ps.condition == c].iloc[0]
        i = rungs.index(c)
        assert (round(i - 0.19, 2), row["generate paper"], False) in bars
        assert (round(i + 0.19, 2), row["generate mirrored"], True) in bars
    assert len(bars) == 6
    mark = [c for c in ax.collections if c.get_label() == "study"][0].get_offsets()[0]
    assert tuple(mark) == (rungs.index("soo_mse") - 0.19, 17.0)


def test_the_bottom_line_names_the_no_contrast_rungs_that_beat_soo(kept):
    """A name-control rung whose answers are all honest is lower than SOO by the one rule: the bottom line says so."""
    import copy

    import pandas as pd

    from soo.llm import scoring
    from soo.llm import ladder as K

    root, _ = kept
    results = [r for r in K.kept_ladder(root / "kept")["results"] if r["condition"] != "generic"]
    names = copy.deepcopy(next(r for r in results if r["condition"] == "soo_mse"))
    names["condition"] = "soo_mse_names"
    for x in names["records"]:
        x["label"] = "honest"
    results.append(names)
    ladder = {"per_seed": pd.DataFrame([scoring.result_row(r) for r in results]), "results": results,
              "items": scoring.item_table(results), "n_kept": 3, "n_expected": 31, "n_organisms": 1}
    soo_rate = K.stats.rate_intervals(ladder["items"]).loc["soo_mse", "rate"]
    bottom = K.glue_llm_full(ladder)["llm_full_bottom"]
    assert soo_rate > 0.1  # the smoke set's SOO run leaves deceptive answers to beat
    assert "lower than SOO (MSE) itself: Name-control pairs, which have no self/other contrast" in bottom
