"""The screen of training settings for the RL premise: in which setting does the deceptive baseline deceive?

The paper's RL claims rest on one premise: the deceptive baseline traps red more often than the honest one. At the
official settings it does not (``notebooks/rl_baselines``). This module screens a small set of settings declared
before any of them was run (:data:`DECLARATION`, also written to ``book/data/rl_screen/declaration.json``) with
short runs: every seed's deceptive and honest baseline at ``SCREEN_EPISODES`` episodes (the exploration noise
annealed over the same share of training as the official schedule), evaluated as the book evaluates its baselines.
A setting passes when the deceptive baseline traps red more often than the honest one, paired over the seeds,
with the book's test (:func:`soo.stats.paired_t_verdict`, two-sided paired t-test at 5 %) **and** in at least
``MIN_SEEDS`` of the seeds. The full protocol is then run at the first passing setting in the declared order.

``python -m soo.rl.screen --round 1`` runs that screen and writes ``book/data/rl_screen/results.json``
(per setting and seed: trap rates, blue's return, the verdict, wall time, machine; read back by :func:`screen_results`);
the baselines notebook shows it.

**Round 2** (:data:`DECLARATION_ROUND2`, ``book/data/rl_screen/declaration_round2.json``; ``python -m soo.rl.screen``,
``make rl-screen``): round 1 ran a quarter of the protocol's length and asked only whether the baselines differ. Round
2 trains every declared setting's baselines at the protocol's own length (and the official setting at twice it), and
a setting passes only when the difference is also the blue's (the swap: both learned blues against the deceptive
baseline's red). Each row is written to ``results_round2.json`` as soon as it is done (:func:`screen_round2_results`);
the runs resume from their checkpoints in ``--out-dir``.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from ..stats import paired_t_verdict
from ..files import atomic_write_json, read_json
from ..provenance import machine_info, manifest
from ..utils import check_choice, project_root
from .config import PAPER_SEEDS, SETTING_LABELS, SETTINGS, scale_config
from .env import MODES
from .evaluation import reference_blues, summary_table
from .runs import _kept_source, agent_dir, baseline_runs, kept_dir_of, run_all
from .training import is_finished

SCREEN_DIR = project_root() / "book" / "data" / "rl_screen"
SCREEN_EPISODES = 10_000
"""Episodes of every screened baseline (the full protocol: 40 000)."""
MIN_SEEDS = 7
DECLARATION = {
    "question": "In which training setting does the deceptive baseline trap red more often than the honest one?",
    "settings": ["official", "single_env", "gamma099", "gamma099_single_env"],
    "order": "the full protocol runs at the first setting in this order that passes (the smallest departure from "
             "the official code first: its own single-environment schedule, then the discount, then both)",
    "why": {"official": "the reference row: the settings of the kept full-protocol runs",
            "single_env": "the official code stepped one environment (n_rollout_threads 1); this project steps 100",
            "gamma099": "at gamma 0.95 no scripted lure beats going straight to the goal in discounted return; "
                        "at 0.99 the best one wins by about 8-10 %",
            "gamma099_single_env": "both departures together"},
    "protocol": {"seeds": list(PAPER_SEEDS), "baseline_episodes": SCREEN_EPISODES,
                 "n_exploration_eps": SCREEN_EPISODES * 25_000 // 40_000,
                 "eval_episodes": 500, "evaluation": "as the book's baselines: deterministic episodes in the "
                 "deceptive environment on evaluation seed 10000 + training seed, every agent meeting the same "
                 "initial states"},
    "criterion": f"trap rate of the deceptive baseline > that of the honest one, paired over the {len(PAPER_SEEDS)} "
                 f"seeds: two-sided paired t-test at 5 % (soo.rl.metrics.paired_verdict says 'yes') and higher in "
                 f"at least {MIN_SEEDS} of {len(PAPER_SEEDS)} seeds",
}
"""What the screen tests and how it decides, fixed before it was run. The declarations name the code as it was
named when they were committed (``soo.rl.metrics.paired_verdict`` is now :func:`soo.stats.paired_t_verdict`, the
same computation; ``soo.rl.experiment.reference_blues`` is now in ``soo.rl.evaluation``); they stay as declared."""


def screen_config(setting: str, seeds=PAPER_SEEDS, episodes: int = SCREEN_EPISODES):
    """The :class:`~soo.rl.config.ScaleConfig` of one screened setting: the full preset's training settings at
    ``episodes`` baseline episodes, the exploration noise annealed over the official share (25/40) of them."""
    check_choice("setting", setting, tuple(SETTINGS))
    base = scale_config("full", seeds=seeds, setting=setting)
    return replace(base, baseline_episodes=episodes,
                   overrides={**base.overrides, "n_exploration_eps": max(1, episodes * 25_000 // 40_000),
                              "save_interval": episodes})


def passes(verdict: dict, min_seeds: int = MIN_SEEDS) -> bool:
    """The declared criterion on :func:`soo.stats.paired_t_verdict`'s result (honest first, deceptive second)."""
    return verdict["verdict"] == "yes" and verdict["n_better"] >= min_seeds


def screen_setting(setting: str, out_dir, seeds=PAPER_SEEDS, episodes: int = SCREEN_EPISODES,
                   workers: int = 2) -> dict:
    """Train and evaluate one setting's baselines with the protocol's own steps; its row of ``results.json``."""
    scfg = screen_config(setting, seeds, episodes)
    runs = baseline_runs(scfg)
    trained = sum(not is_finished(agent_dir(out_dir, scfg.tag, r.kind, r.seed), r.cfg) for r in runs)
    t0 = time.perf_counter()
    run_all(runs, out_dir, scfg.tag, workers, kept_dir=None, cpu_stack=scfg.cpu_stack)
    train_s = time.perf_counter() - t0
    table = summary_table(scfg, out_dir, kinds=MODES)
    per = {k: table[table.agent == k].set_index("seed").loc[list(scfg.seeds)] for k in MODES}
    v = paired_t_verdict(per["honest"]["trap_rate"], per["deceptive"]["trap_rate"])
    return {"setting": setting, "settings": SETTINGS[setting], "seeds": list(scfg.seeds), "episodes": episodes,
            "trap_rate": {k: per[k]["trap_rate"].tolist() for k in MODES},
            "return_blue": {k: per[k]["return_blue"].tolist() for k in MODES},
            "verdict": v["verdict"], "n_better": v["n_better"], "n": v["n"], "mean_diff": v["mean_diff"],
            "passes": passes(v), "runs_trained": trained, "train_wall_s": train_s,
            "eval_wall_s": time.perf_counter() - t0 - train_s}


def chosen(results: dict) -> str | None:
    """The first passing setting in the declared order, or None."""
    rows = {r["setting"]: r for r in results["rows"]}
    return next((s for s in results["declaration"]["settings"] if s in rows and rows[s]["passes"]), None)


def screen_results(path=None) -> dict | None:
    """The screen's results (``book/data/rl_screen/results.json``, written by :func:`main`), or None where the
    screen has not run."""
    path = Path(path) if path is not None else SCREEN_DIR / "results.json"
    return read_json(path) if path.exists() else None


# ---- round 2: at the protocol's length and longer, and does the blue deceive?

ROUND2_SETTINGS = ("official", "official_long", "single_env", "gamma099", "gamma099_single_env")
DECLARATION_ROUND2 = {
    "round": 2,
    "question": "In which training setting does the deceptive baseline trap red more often than the honest one "
                "*because of its blue*, at the protocol's own length or longer?",
    "settings": list(ROUND2_SETTINGS),
    "baseline_episodes": {"official": 40_000, "official_long": 80_000, "single_env": 40_000, "gamma099": 40_000,
                          "gamma099_single_env": 40_000},
    "n_exploration_eps": {"official": 25_000, "official_long": 50_000, "single_env": 25_000, "gamma099": 25_000,
                          "gamma099_single_env": 25_000},
    "why": {"official": "the reference row: the 16 kept baselines of book/data/rl_full/official (not retrained)",
            "official_long": "round 1 and the kept runs disagree on the official setting (10 000 episodes: not "
                             "separated; 40 000: separated): is the learned deceptive blue under-trained? Twice the "
                             "protocol's length, the exploration annealed over the same 5/8 of it",
            "single_env": "the official code stepped one environment (n_rollout_threads 1); this project steps 100",
            "gamma099": "at gamma 0.95 no scripted lure beats going straight to the goal in discounted return; "
                        "at 0.99 the best one wins by about 8-10 %",
            "gamma099_single_env": "both departures together"},
    "order": "if more than one setting passes, the full protocol runs at the first passing one in this order: "
             "official, official_long, single_env, gamma099, gamma099_single_env (the smallest departure from the "
             "official code first: its own settings, then only longer, then its single-environment schedule, then "
             "the discount, then both)",
    "protocol": {"seeds": list(PAPER_SEEDS), "eval_episodes": 500,
                 "evaluation": "as the book's baselines: deterministic episodes in the deceptive environment on "
                               "evaluation seed 10000 + training seed, every agent meeting the same initial states; "
                               "the swaps and reference blues as soo.rl.experiment.reference_blues",
                 "every_setting_runs": True},
    "criterion": {
        "i": f"the deceptive baseline traps red more often than the honest one, paired over the {len(PAPER_SEEDS)} "
             f"seeds: two-sided paired t-test at 5 % (soo.rl.metrics.paired_verdict says 'yes') and higher in at "
             f"least {MIN_SEEDS} of {len(PAPER_SEEDS)} seeds",
        "ii": "the difference is the blue's: against each seed's deceptive baseline's own red, its learned blue "
              "traps red more often than the honest baseline's learned blue (two-sided paired t-test at 5 %, "
              "soo.rl.metrics.paired_verdict says 'yes')",
        "passes": "both (i) and (ii)"},
    "recorded": "per setting and seed: both baselines' trap rates, the swap (learned blues against the deceptive "
                "red), the reference blues, each learned blue's return and discounted return (gamma of the setting) "
                "against the deceptive red beside the scripted straight-to-goal blue's (competence), wall time, "
                "machine",
}
"""Round 2 of the screen, fixed before any of its runs (``book/data/rl_screen/declaration_round2.json``)."""


def round2_config(setting: str, seeds=PAPER_SEEDS):
    """The full protocol's :class:`~soo.rl.config.ScaleConfig` at ``setting`` (its baselines are round 2's runs)."""
    check_choice("setting", setting, ROUND2_SETTINGS)
    scfg = scale_config("full", seeds=seeds, setting=setting)
    assert scfg.baseline_length == DECLARATION_ROUND2["baseline_episodes"][setting]
    return scfg


def passes_round2(premise: dict, blue: dict, min_seeds: int = MIN_SEEDS) -> bool:
    """Round 2's criterion: (i) :func:`passes` on the baselines' verdict and (ii) the swap's verdict is 'yes'."""
    return passes(premise, min_seeds) and blue["verdict"] == "yes"


def round2_row(scfg, out_dir) -> dict:
    """Evaluate one setting's (finished) baselines: round 2's record of it (see :data:`DECLARATION_ROUND2`)."""
    seeds = list(scfg.seeds)
    table = summary_table(scfg, out_dir, kinds=MODES)
    per = {k: table[table.agent == k].set_index("seed").loc[seeds] for k in MODES}
    ref = reference_blues(scfg, out_dir)

    def vs_deceptive_red(blue: str, col: str) -> list:
        return [next(r[col] for r in ref["rows"] if r["seed"] == s and r["red"] == "deceptive" and r["blue"] == blue)
                for s in seeds]

    premise = paired_t_verdict(per["honest"]["trap_rate"], per["deceptive"]["trap_rate"])
    swap = {b: vs_deceptive_red(b, "trap_rate") for b in ("learned_deceptive", "learned_honest")}
    blue = paired_t_verdict(swap["learned_honest"], swap["learned_deceptive"])
    disc = {b: vs_deceptive_red(b, "disc_blue") for b in ("learned_deceptive", "learned_honest", "goal")}
    comp = paired_t_verdict(disc["learned_deceptive"], disc["goal"])  # "yes": the learned blue earns less than goal
    return {"setting": scfg.setting, "label": SETTING_LABELS[scfg.setting], "settings": SETTINGS[scfg.setting],
            "seeds": seeds, "episodes": scfg.baseline_length, "gamma": ref["gamma"],
            "trap_rate": {k: per[k]["trap_rate"].tolist() for k in MODES},
            "return_blue": {k: per[k]["return_blue"].tolist() for k in MODES},
            "premise": {k: premise[k] for k in ("verdict", "n_better", "n", "mean_diff")},
            "swap_trap_rate": swap, "blue": {k: blue[k] for k in ("verdict", "n_better", "n", "mean_diff")},
            "disc_return_vs_deceptive_red": disc,
            "undisc_return_vs_deceptive_red": {b: vs_deceptive_red(b, "return_blue") for b in disc},
            "below_goal": {k: comp[k] for k in ("verdict", "n_better", "n", "mean_diff")},
            "reference": [r for r in ref["rows"]],
            "passes_i": passes(premise), "passes_ii": blue["verdict"] == "yes",
            "passes": passes_round2(premise, blue)}


def screen_round2_setting(setting: str, out_dir, workers: int = 2) -> dict:
    """Train (or resume, or restore from the kept runs) one setting's 16 baselines and evaluate them."""
    scfg = round2_config(setting)
    kept = kept_dir_of(setting)
    kept = kept if kept.exists() else None
    runs = baseline_runs(scfg)
    dirs = {r: agent_dir(out_dir, scfg.tag, r.kind, r.seed) for r in runs}
    trained = sum(not is_finished(dirs[r], r.cfg) and _kept_source(r, kept) is None for r in runs)
    resumed = sum(not is_finished(dirs[r], r.cfg) and (dirs[r] / "resume.pt").exists() for r in runs)
    t0 = time.perf_counter()
    run_all(runs, out_dir, scfg.tag, workers, kept_dir=kept, cpu_stack=scfg.cpu_stack)
    train_s = time.perf_counter() - t0
    row = round2_row(scfg, out_dir)
    return {**row, "runs_trained": trained, "train_wall_s": train_s, "eval_wall_s": time.perf_counter() - t0 - train_s,
            **({} if kept else run_walls(runs, dirs, workers))} | ({"runs_resumed": resumed} if resumed else {})


def run_walls(runs, dirs, workers: int) -> dict:
    """Each baseline's own training time (``wall_time_s`` of its metrics: every sitting that trained it, summed) and
    ``train_wall_s_all_sittings``: those times over each stack of runs trained together, shared by the ``workers``
    (the training time of one uninterrupted sitting; ``train_wall_s`` counts only the command's own sitting, which
    is less where runs resumed from an earlier one's checkpoints)."""
    metrics = {r: read_json(dirs[r] / "metrics.json") for r in runs}
    walls = {f"{r.kind}_seed{r.seed}": m.get("wall_time_s") for r, m in metrics.items()}
    if any(w is None for w in walls.values()):
        return {"run_wall_s": walls}
    stack_s = sum(m["wall_time_s"] / m.get("stacked_runs", 1) for m in metrics.values())
    return {"run_wall_s": walls, "train_wall_s_all_sittings": stack_s / max(1, workers)}


def chosen_round2(results: dict) -> str | None:
    """The first passing setting of round 2 in the declared order, or None."""
    rows = {r["setting"]: r for r in results["rows"]}
    return next((s for s in DECLARATION_ROUND2["settings"] if s in rows and rows[s]["passes"]), None)


def screen_round2_results(path=None) -> dict | None:
    """Round 2's results (``book/data/rl_screen/results_round2.json``), or None where none has run."""
    path = Path(path) if path is not None else SCREEN_DIR / "results_round2.json"
    return read_json(path) if path.exists() else None


def _check_declared(path: Path, declaration: dict) -> None:
    if not path.exists() or read_json(path) != json.loads(json.dumps(declaration)):
        raise SystemExit(f"{path} is missing or differs from its declaration in soo.rl.screen: the screen runs only "
                         "what was declared before it (write the declaration and commit it first).")


ROUNDS = {1: ("declaration.json", DECLARATION, "results.json", "screen_setting", "chosen",
              ("setting", "verdict", "n_better", "mean_diff", "passes", "train_wall_s")),
          2: ("declaration_round2.json", DECLARATION_ROUND2, "results_round2.json", "screen_round2_setting",
              "chosen_round2", ("setting", "passes_i", "passes_ii", "passes", "train_wall_s"))}
"""Per round: its declaration file and declaration, its results file, the function that screens one setting and
the one that picks the setting (looked up by name when called), and what is printed of each row."""


def run_round(number: int, settings, out_dir, workers: int, screen_dir) -> dict:
    """Screen ``settings`` (None: every declared one) of round ``number``; each row is written to the round's
    results file as soon as it is done (re-read first: another run may have written a row meanwhile). A setting
    whose runs were all read back, not trained, keeps the training time and machine recorded before."""
    decl_name, declaration, res_name, screen_fn, chosen_fn, shown = ROUNDS[number]
    sdir = Path(screen_dir)
    _check_declared(sdir / decl_name, declaration)
    out = Path(out_dir or tempfile.mkdtemp(prefix=f"rl_screen{number}_"))
    res_path = sdir / res_name
    results = {"declaration": declaration, "rows": []}
    for setting in settings or declaration["settings"]:
        row = {**globals()[screen_fn](setting, out, workers=workers), "machine": machine_info(), "workers": workers,
               **manifest()}
        results = read_json(res_path) if res_path.exists() else results
        old = next((r for r in results["rows"] if r["setting"] == setting), None)
        if row["runs_trained"] == 0 and old is not None:
            row.update({k: old[k] for k in ("train_wall_s", "machine", "workers", "versions", "git_commit") if k in old})
        results["rows"] = [r for r in results["rows"] if r["setting"] != setting] + [row]
        results["rows"].sort(key=lambda r: declaration["settings"].index(r["setting"]))
        results["chosen"] = globals()[chosen_fn](results)
        atomic_write_json(res_path, results)
        print(json.dumps({k: row[k] for k in shown}), flush=True)
    print(f"chosen: {results.get('chosen')}")
    return results


def main(argv=None) -> int:
    """``make rl-screen``: screen the declared settings of a round (all, or ``--settings``) and write the results."""
    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--round", type=int, default=2, choices=(1, 2), help="1: the short screen; 2 (default): "
                    "the protocol's length and longer, criterion (i) and (ii)")
    ap.add_argument("--settings", nargs="*", default=None, choices=ROUND2_SETTINGS)
    ap.add_argument("--out-dir", default=None, help="where to train (default: a fresh temporary folder)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--screen-dir", default=str(SCREEN_DIR))
    args = ap.parse_args(argv)
    for s in args.settings or ():
        check_choice("settings", s, tuple(ROUNDS[args.round][1]["settings"]))
    run_round(args.round, args.settings, args.out_dir, args.workers, args.screen_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
