"""What the RL pages show, computed from the cached evaluation steps (``soo.rl.evaluation``) and the claims' verdicts
(``soo.rl.verdicts``): the tables, and one function per page that returns every value the page glues
(:func:`glue_rl_baselines` with :func:`glue_rl_premise`, :func:`glue_rl_soo`, :func:`glue_rl_classification` with
:func:`glue_rl_lottery`). The convention of every function here: pass what the notebook has already computed
(``table=``, ``beh=``, ``ref=``, ...), and it computes the rest through the cached steps (the steps the docstrings
name, :func:`summary_table`, :func:`behaviour`, :func:`classify`, ..., are ``soo.rl.evaluation``'s). No training, no
evaluation of its own and no figures (``soo.rl.figures``).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..stats import paired_t_verdict
from ..stats import seed_table
from .config import AGENT_KINDS, AGENTS, SETTING_LABELS, ScaleConfig
from .diagnostics import REFERENCE_BLUES, lure_verdict
from .env import MODES
from .evaluation import (behaviour, classify, deceptive_moves_per_episode, provenance, reference_blues, reference_frame,
                         same_weights, summary_table, training_history)
from .screen import DECLARATION_ROUND2, MIN_SEEDS, SCREEN_EPISODES, screen_results
from .verdicts import CLAIM_NAMES, TRAP_RATE_CLAIMS, blue_traps_more, bottom_line, claims, red_trapped_more


# ---- tables

def summary_by_agent(table: pd.DataFrame, columns=None) -> pd.DataFrame:
    """Mean and population SD over seeds of :func:`summary_table`'s ``columns`` (default: all), one row per agent."""
    return seed_table(table.drop(columns="seed"), "agent", columns)


def screen_frame(res: dict) -> pd.DataFrame:
    """One row per screened setting: its departures, trap rates (mean over seeds), verdict, seeds, criterion met."""
    return pd.DataFrame([{"setting": r["setting"], "changes": ", ".join(f"{k}={v}" for k, v in r["settings"].items())
                          or "none", "deceptive trap %": 100 * np.mean(r["trap_rate"]["deceptive"]),
                          "honest trap %": 100 * np.mean(r["trap_rate"]["honest"]), "verdict": r["verdict"],
                          "seeds deceptive higher": f"{r['n_better']} of {r['n']}", "passes": r["passes"],
                          "training min": r["train_wall_s"] / 60} for r in res["rows"]]).set_index("setting")


def _seed_word(v: dict) -> str:
    return f"{v['verdict']} ({v['n_better']} of {v['n']} seeds)"


def screen2_table(res: dict | None) -> pd.DataFrame:
    """Round 2 of the screen, one row per declared setting in the declared order (a setting not run yet says so):
    both baselines' trap rates and criterion (i), the swap (learned blues against the deceptive baseline's red) and
    criterion (ii), the learned deceptive blue's discounted return beside the straight-to-goal blue's against the
    same red (competence), whether both parts pass, and the training time."""
    rows = {r["setting"]: r for r in (res or {}).get("rows", [])}
    out = []
    for s in DECLARATION_ROUND2["settings"]:
        episodes = f"{DECLARATION_ROUND2['baseline_episodes'][s]:,}".replace(",", " ")
        name = f"{SETTING_LABELS[s]} ({episodes} episodes)"
        r = rows.get(s)
        if r is None:
            out.append({"setting": name, "deceptive / honest trap %": "not run yet"})
            continue
        tr, sw, disc = r["trap_rate"], r["swap_trap_rate"], r["disc_return_vs_deceptive_red"]
        out.append({
            "setting": name,
            "deceptive / honest trap %": f"{100 * np.mean(tr['deceptive']):.1f} / {100 * np.mean(tr['honest']):.1f}",
            "(i) baselines differ": _seed_word(r["premise"]),
            "deceptive / honest blue vs deceptive red, trap %":
                f"{100 * np.mean(sw['learned_deceptive']):.1f} / {100 * np.mean(sw['learned_honest']):.1f}",
            "(ii) blue's doing": _seed_word(r["blue"]),
            "discounted return: learned deceptive / straight to goal":
                f"{np.mean(disc['learned_deceptive']):.1f} / {np.mean(disc['goal']):.1f}",
            "passes (i) and (ii)": "yes" if r["passes"] else "no",
            "training min": _training_min(r)})
    return pd.DataFrame(out).set_index("setting").fillna("")


def _training_min(row: dict) -> str:
    """A round-2 row's training time in minutes: over every sitting that trained its runs where recorded (runs can
    resume from an earlier sitting's checkpoints), "kept runs" where they were read back from the book's data."""
    if "train_wall_s_all_sittings" in row:
        return f"{row['train_wall_s_all_sittings'] / 60:.0f}"
    return "kept runs" if row["runs_trained"] == 0 else f"{row['train_wall_s'] / 60:.0f}"


def _i_only_words(r: dict) -> str:
    """A round-2 row that met part (i) and not part (ii), in words: the baselines' trap rates, then the two blues'
    against the deceptive baseline's red."""
    pct = {k: 100 * float(np.mean(v)) for k, v in {**r["trap_rate"], **r["swap_trap_rate"]}.items()}
    return (f"{SETTING_LABELS[r['setting']]}: the baselines differ ({_seed_word(r['premise'])}; {pct['deceptive']:.1f} % "
            f"against {pct['honest']:.1f} %), but against the deceptive baseline's red its blue traps "
            f"{pct['learned_deceptive']:.1f} % and the honest baseline's blue {pct['learned_honest']:.1f} % "
            f"({_seed_word(r['blue'])})")


def glue_rl_screen2(res: dict | None) -> dict:
    """``{glue name: value}`` of round 2 of the screen: its table (:func:`screen2_table`), how many declared
    settings have run, which passed, the chosen setting, and one sentence that says so (``rl_screen2_bottom``)."""
    rows = {r["setting"]: r for r in (res or {}).get("rows", [])}
    declared = DECLARATION_ROUND2["settings"]
    done = [s for s in declared if s in rows]
    passed = [SETTING_LABELS[s] for s in done if rows[s]["passes"]]
    pending = [SETTING_LABELS[s] for s in declared if s not in rows]
    n_i, n_ii = (sum(bool(rows[s][k]) for s in done) for k in ("passes_i", "passes_ii"))
    if passed:
        bottom = f"{'; '.join(passed)} met both parts of the criterion"
    elif not pending:
        longest = f"{max(rows[s]['episodes'] for s in done):,}".replace(",", " ")
        bottom = (f"none of the {len(done)} declared settings met both parts of the criterion (part (i), the "
                  f"deceptive baseline trapping more by the paired t-test and in at least {MIN_SEEDS} of 8 seeds: "
                  f"{n_i} of {len(done)}; part (ii), its blue trapping more than the honest baseline's against the "
                  f"same red: {n_ii} of {len(done)}), so the premise of the SOO claims failed at the protocol's length "
                  f"and at up to {longest} episodes of baseline training")
    else:
        bottom = (f"none of the {len(done)} setting{'s' * (len(done) != 1)} run so far met both parts of the "
                  f"criterion (part (i): {n_i}, part (ii): {n_ii})")
    if pending:
        bottom += f" ({len(pending)} of {len(declared)} declared settings not run yet: {'; '.join(pending)})"
    out = {"rl_screen2_table": screen2_table(res), "rl_screen2_bottom": bottom,
           "rl_screen2_done": f"{len(done)} of {len(declared)}",
           "rl_screen2_chosen": (res or {}).get("chosen") or "none",
           "rl_screen2_min": MIN_SEEDS}
    for s in declared:  # every declared setting, "not run yet" where it has not run (the page names each)
        r = rows.get(s)
        if r is None:
            out.update({f"rl_screen2_{s}_{k}": "not run yet" for k in ("premise", "blue", "disc_deceptive",
                                                                       "disc_goal", "passes")})
            continue
        disc = r["disc_return_vs_deceptive_red"]
        out.update({f"rl_screen2_{s}_premise": _seed_word(r["premise"]), f"rl_screen2_{s}_blue": _seed_word(r["blue"]),
                    f"rl_screen2_{s}_disc_deceptive": f"{np.mean(disc['learned_deceptive']):.1f}",
                    f"rl_screen2_{s}_disc_goal": f"{np.mean(disc['goal']):.1f}",
                    f"rl_screen2_{s}_passes": "passes" if r["passes"] else "fails"})
    i_only = [s for s in done if rows[s]["passes_i"] and not rows[s]["passes_ii"]]
    out["rl_screen2_i_only"] = "; ".join(_i_only_words(rows[s]) for s in i_only) or "no setting met part (i) alone"
    machines = {f"{r['machine']['cpu']} ({r['machine']['cpu_count']} cores)" for s, r in rows.items() if r["runs_trained"]}
    out["rl_screen2_machine"] = "; ".join(sorted(machines)) or "none (every row read from kept runs)"
    return out


def classification_table(res: dict) -> pd.DataFrame:
    """Accuracy of :func:`classify`'s result: one row per number of episodes, one column per training seed."""
    acc = pd.DataFrame({p["seed"]: p["accuracy"] for p in res["per_seed"]}, index=res["episodes"])
    acc.index.name = "episodes per seed"
    return acc


def mean_soo_table(res: dict) -> pd.DataFrame:
    """Each baseline's mean SOO value at the largest number of episodes (mean over evaluation seeds), per seed."""
    rows = [{"seed": p["seed"], "agent": m, "mean SOO": float(np.mean(np.array(p["soo"][m])[:, -1]))}
            for p in res["per_seed"] for m in MODES]
    return pd.DataFrame(rows).pivot(index="seed", columns="agent", values="mean SOO")


def finetune_table(runs: dict) -> pd.DataFrame:
    """One row per fine-tuning run of :func:`finetune`: wall time and the last logged SOO and capability terms."""
    return pd.DataFrame([{"condition": c, "seed": s, "wall_time_s": m["wall_time_s"],
                          "last SOO term": m["history"][-1].get("losses/soo", float("nan")),
                          "last capability term": m["history"][-1].get("losses/capability", float("nan"))}
                         for (c, s), m in runs.items()])


# ---- the values each RL page glues (one function per notebook; the notebook glues them in a loop)

def _seeds_text(scfg: ScaleConfig) -> str:
    return ", ".join(map(str, scfg.seeds))


def noise_end_returns(scfg: ScaleConfig, hist: pd.DataFrame) -> dict:
    """Blue's training return around the end of the exploration noise (it is annealed to zero at episode
    ``n_exploration_eps``): per baseline kind, each seed's mean logged return over the ``window`` episodes up to
    that episode and over the last ``window`` episodes of training, and the paired verdict on "the return is lower
    at the end" (:func:`soo.stats.paired_t_verdict`). ``window``: a third of the noiseless phase, at least one
    logged batch. ``hist``: :func:`training_history`."""
    cfg = scfg.rl_config("deceptive", scfg.seeds[0])
    n, end = cfg.n_episodes, min(cfg.n_exploration_eps, cfg.n_episodes)
    window = max((n - end) // 3, cfg.num_envs)
    out = {"noise_end": end, "window": window}
    for kind in MODES:
        h = hist[hist.agent == kind]
        before = h[(h.episode > end - window) & (h.episode <= end)].groupby("seed")["return_blue"].mean()
        last = h[h.episode > n - window].groupby("seed")["return_blue"].mean()
        out[kind] = {"at_noise_end": before, "last": last.loc[before.index], **paired_t_verdict(last, before)}
    return out


def glue_rl_baselines(scfg: ScaleConfig, out_dir, table: pd.DataFrame | None = None,
                      prov: pd.DataFrame | None = None, hist: pd.DataFrame | None = None) -> dict:
    """``{glue name: value}`` of ``notebooks/rl_baselines``: the protocol, training times and machines, the
    baselines' behaviour (mean over seeds), whether the deceptive one traps red more often than the honest one,
    and blue's training return when the exploration noise ends and at the end (:func:`noise_end_returns`).
    ``table`` (:func:`summary_table` of the baselines), ``prov`` (:func:`provenance`) and ``hist``
    (:func:`training_history`): pass them if the notebook has them already."""
    table = summary_table(scfg, out_dir, kinds=MODES) if table is None else table
    prov = provenance(scfg, out_dir, kinds=MODES) if prov is None else prov
    hist = training_history(scfg, out_dir) if hist is None else hist
    prov = prov[prov.run.str.startswith(MODES)]
    stacked = prov["stacked_runs"].fillna(1).clip(lower=1).astype(int)
    times = prov["wall_time_s"] / stacked  # runs trained as one stack share its time
    per_episode = times.mean() / scfg.baseline_episodes
    sizes = sorted(set(stacked))
    out = {"rl_scale": scfg.scale, "rl_seeds": _seeds_text(scfg), "rl_baseline_episodes": scfg.baseline_episodes,
           "rl_train_s_per_run": float(times.mean()), "rl_full_min_per_run": float(per_episode * 40_000 / 60),
           "rl_train_stacks": "one run at a time" if sizes == [1] else (
               f"stacks of {' or '.join(map(str, sizes))} runs, each run counted at its share of its stack's time"),
           "rl_trained_on": "; ".join(f"{cpu}, {where} ({n} runs)"
                                      for (cpu, where), n in prov.groupby(["cpu", "where"]).size().items())}
    agg = summary_by_agent(table)
    for kind in MODES:
        out[f"rl_{kind}_trap_rate"] = 100 * float(agg.loc[kind, "trap_rate mean"])
        out[f"rl_{kind}_return_blue"] = float(agg.loc[kind, "return_blue mean"])
        out[f"rl_{kind}_dist_fake"] = float(agg.loc[kind, "blue_dist_fake mean"])
        out[f"rl_{kind}_dist_goal"] = float(agg.loc[kind, "blue_dist_goal mean"])
    per_seed = table.pivot(index="seed", columns="agent", values="trap_rate")
    sep = paired_t_verdict(per_seed["honest"], per_seed["deceptive"])  # does the deceptive baseline trap red more?
    out["rl_baselines_differ"] = sep["verdict"]
    out["rl_baselines_differ_seeds"] = f"{sep['n_better']} of {sep['n']}"
    out["rl_trap_ratio"] = float(per_seed["deceptive"].mean() / max(per_seed["honest"].mean(), 1e-9))
    ne = noise_end_returns(scfg, hist)
    out["rl_noise_end_episode"], out["rl_noise_window"] = ne["noise_end"], ne["window"]
    for kind in MODES:
        r = ne[kind]
        out[f"rl_{kind}_return_noise_end"] = float(r["at_noise_end"].mean())
        out[f"rl_{kind}_return_last"] = float(r["last"].mean())
        out[f"rl_{kind}_return_drop"] = r["verdict"]
        out[f"rl_{kind}_return_drop_seeds"] = f"{r['n_better']} of {r['n']}"
    return out


def _mean_of(df: pd.DataFrame, red: str, blue: str, col: str) -> float:
    return float(df[(df.red == red) & (df.blue == blue)][col].mean())


def glue_rl_premise(scfg: ScaleConfig, out_dir, ref: dict | None = None, screen: dict | None = None) -> dict:
    """``{glue name: value}`` of the premise section of ``notebooks/rl_baselines``: every red against the learned
    and reference blues (mean over seeds of trap rate, blue's return and discounted return: ``rl_ref_{red}_{blue}_*``),
    whether the learned deceptive blue traps red more often than the straight-to-goal blue (paired over seeds),
    whether luring pays at the training discount (:func:`soo.rl.diagnostics.lure_verdict`), the deceptive
    movements per episode of both baselines, and the settings screen (``rl_screen_*``; absent if not run)."""
    ref = reference_blues(scfg, out_dir) if ref is None else ref
    df = reference_frame(ref)
    out = {"rl_gamma": ref["gamma"]}
    for red in MODES:
        for blue in ["learned_deceptive", "learned_honest", *REFERENCE_BLUES]:
            for col, unit in (("trap_rate", 100), ("return_blue", 1), ("disc_blue", 1)):
                out[f"rl_ref_{red}_{blue}_{col}"] = unit * _mean_of(df, red, blue, col)
    per = {s: [r for r in ref["rows"] if r["seed"] == s] for s in scfg.seeds}
    lv = lure_verdict(per)
    out.update({"rl_lure_pays": lv["pays"], "rl_lure_best": REFERENCE_BLUES[lv["best_lure"]].lower(),
                "rl_lure_disc_goal": lv["disc_goal"], "rl_lure_disc_lure": lv["disc_lure"],
                "rl_lure_disc_seeds": f"{lv['disc']['n_better']} of {lv['disc']['n']}",
                "rl_lure_undisc_goal": lv["undisc_goal"], "rl_lure_undisc_lure": lv["undisc_lure"],
                "rl_lure_undisc_verdict": lv["undisc"]["verdict"],
                "rl_lure_undisc_seeds": f"{lv['undisc']['n_better']} of {lv['undisc']['n']}"})
    for name, than in (("rl_deceptive_beats_goal", "goal"), ("rl_blue_deceives", "learned_honest")):
        v = blue_traps_more(scfg, ref, than)
        out[name], out[f"{name}_seeds"] = v["verdict"], f"{v['n_better']} of {v['n']}"
    v = red_trapped_more(scfg, ref)
    out["rl_red_differs"], out["rl_red_differs_seeds"] = v["verdict"], f"{v['n_better']} of {v['n']}"
    moves = deceptive_moves_per_episode(scfg, out_dir)
    mv = paired_t_verdict(moves["honest"], moves["deceptive"])
    out.update({"rl_base_moves_deceptive": float(np.mean(moves["deceptive"])),
                "rl_base_moves_honest": float(np.mean(moves["honest"])), "rl_moves_differ": mv["verdict"],
                "rl_moves_differ_seeds": f"{mv['n_better']} of {mv['n']}"})
    screen = screen_results() if screen is None else screen
    if screen is not None:
        out.update({"rl_screen_episodes": SCREEN_EPISODES, "rl_screen_min": MIN_SEEDS,
                    "rl_screen_chosen": screen.get("chosen") or "none",
                    "rl_screen_bottom": (f"the setting '{screen['chosen']}' met the criterion" if screen.get("chosen")
                                         else f"none of the {len(screen['rows'])} declared settings met the criterion"),
                    "rl_screen_n_settings": len(screen["rows"]),
                    "rl_screen_machine": "; ".join(sorted({f"{r['machine']['cpu']} ({r['machine']['cpu_count']} cores)"
                                                           for r in screen["rows"]}))})
        for r in screen["rows"]:
            k = f"rl_screen_{r['setting']}"
            out.update({f"{k}_verdict": r["verdict"], f"{k}_seeds": f"{r['n_better']} of {r['n']}",
                        f"{k}_diff": 100 * r["mean_diff"], f"{k}_passes": "passes" if r["passes"] else "fails",
                        f"{k}_deceptive": 100 * float(np.mean(r["trap_rate"]["deceptive"])),
                        f"{k}_honest": 100 * float(np.mean(r["trap_rate"]["honest"])),
                        f"{k}_min": r["train_wall_s"] / 60})
    return out


def _eng(x: float) -> str:
    """A large number in the behavioural-difference figure's style: 700k, 1.2M."""
    for div, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:.3g}{suffix}"
    return f"{x:.3g}"


def trajectory_note(trajectories: dict) -> str:
    """What the example episodes (:func:`soo.rl.evaluation.trajectories`, one per agent kind) show, in words: for
    each, whether red ended trapped at the fake landmark (within ``soo.rl.env.NEAR`` of it), and a warning where
    the examples point the other way from the paper's claim (the honest agent's red trapped, the deceptive's not)."""
    from .env import NEAR

    def trapped(k):
        tr = trajectories[k]
        return bool(np.linalg.norm(np.asarray(tr["pos"])[-1, 0] - np.asarray(tr["fake"])) <= NEAR)

    kinds = [k for k in AGENT_KINDS if k in trajectories]
    text = "; ".join(f"{AGENTS[k]}: red {'ends trapped' if trapped(k) else 'is not trapped'}" for k in kinds)
    if "deceptive" in kinds and "honest" in kinds and trapped("honest") and not trapped("deceptive"):
        text += (" (the two baselines' episodes show the opposite of the paper's claim: one episode is an "
                 "illustration, the rates over all episodes are the evidence)")
    return text


def glue_rl_baselines_bottom(values: dict) -> dict:
    """The baselines page's bottom line (``rl_base_bottom``) and its one wording of the premise verdict
    (``rl_baselines_differ_rule``), from the values :func:`glue_rl_baselines`, :func:`glue_rl_premise` and
    :func:`glue_rl_screen2` glued (pass them merged): does the deceptive baseline trap red more often, does it meet
    the screen's seed-by-seed rule, is the difference its blue's, what a motionless blue does with the same red, and
    is the learned blue competent at its own reward."""
    v = values
    k = int(v["rl_baselines_differ_seeds"].split(" of ")[0])
    rule = "met" if v["rl_baselines_differ"] == "yes" and k >= MIN_SEEDS else "not met"
    still, learned = v["rl_ref_deceptive_still_trap_rate"], v["rl_ref_deceptive_learned_deceptive_trap_rate"]
    disc_d, disc_g = v["rl_ref_deceptive_learned_deceptive_disc_blue"], v["rl_ref_deceptive_goal_disc_blue"]
    out = {"rl_baselines_differ_rule": (f"{v['rl_baselines_differ']} by the paired t-test, higher in "
                                        f"{v['rl_baselines_differ_seeds']} seeds; the screen's rule, the t-test and at "
                                        f"least {MIN_SEEDS} of 8 seeds: {rule}")}
    out["rl_base_bottom"] = (
        f"the deceptive baseline traps red in {v['rl_deceptive_trap_rate']:.1f} % of the episodes and the honest one in "
        f"{v['rl_honest_trap_rate']:.1f} % ({out['rl_baselines_differ_rule']}); against the deceptive "
        f"baseline's own red, the honest baseline's blue traps red in {v['rl_ref_deceptive_learned_honest_trap_rate']:.1f} "
        f"% and the learned deceptive blue in {learned:.1f} % (more, by the paired t-test: {v['rl_blue_deceives']}, "
        f"{v['rl_blue_deceives_seeds']} seeds), and a motionless blue in {still:.1f} %, "
        f"{'more' if still > learned else 'less'} than the learned deceptive blue: "
        + ("the difference is (at least partly) the blue's. " if v["rl_blue_deceives"] == "yes" else
           "the difference is not shown to be the blue's"
           + ("; with one and the same blue the deceptive baseline's red is trapped more often: it lies in the reds. "
              if v.get("rl_red_differs") == "yes" else ". "))
        + f"The learned deceptive blue earns a discounted return of {disc_d:.1f} against that red where driving straight "
        f"to the goal earns {disc_g:.1f}: it {'has not learned' if disc_d < disc_g else 'has learned'} its own task "
        f"as well as the scripted blue")
    return out


def glue_rl_soo(scfg: ScaleConfig, out_dir, table: pd.DataFrame | None = None, beh: dict | None = None,
                cl: dict | None = None) -> dict:
    """``{glue name: value}`` of ``notebooks/rl_soo``: the protocol, every agent's trap rate and return, the
    behavioural differences, each claim of :func:`claims` (verdict, mean and SD of the per-seed difference,
    seeds in favour), and in how many seeds the random control's weights equal the capability-only run's.
    ``table`` (:func:`summary_table`), ``beh`` (:func:`behaviour`) and ``cl`` (:func:`claims`): pass them if the
    notebook has them already."""
    table = summary_table(scfg, out_dir) if table is None else table
    beh = behaviour(scfg, out_dir) if beh is None else beh
    cl = claims(scfg, out_dir, table, beh) if cl is None else cl
    out = {"rl_soo_scale": scfg.scale, "rl_soo_seeds": _seeds_text(scfg), "rl_soo_episodes": scfg.soo_episodes}
    agg = summary_by_agent(table, ["return_blue", "blue_dist_goal", "blue_dist_fake", "trap_rate"])
    for kind in agg.index:
        out[f"rl_{kind}_trap_rate_ft"] = 100 * float(agg.loc[kind, "trap_rate mean"])
        out[f"rl_{kind}_return_blue_ft"] = float(agg.loc[kind, "return_blue mean"])
    diff = beh["difference"]
    for pair, d in diff.items():
        out[f"rl_diff_{pair}"] = d["mean"]
        out[f"rl_diff_{pair}_sd"] = d["sd"]
        out[f"rl_diff_{pair}_text"] = f"{_eng(d['mean'])} ± {_eng(d['sd'])} counts² (mean ± SD over seeds)"
    for name in CLAIM_NAMES:
        c, unit = cl[name], (100 if name in TRAP_RATE_CLAIMS else 1)
        out[f"rl_claim_{name}"] = c["verdict"]
        out[f"rl_claim_{name}_diff"] = unit * c["mean_diff"]
        out[f"rl_claim_{name}_sd"] = unit * c["sd_diff"]
        out[f"rl_claim_{name}_seeds"] = f"{c['n_better']} of {c['n']}"
    for cond, c in cl["controls_reduce"].items():
        out[f"rl_claim_{cond}_reduces"] = c["verdict"]
        out[f"rl_claim_{cond}_reduces_seeds"] = f"{c['n_better']} of {c['n']}"
    for kind, v in cl["per_seed"]["deceptive_moves"].items():
        out[f"rl_moves_{kind}"] = float(np.mean(v))
    out["rl_n_seeds"] = len(scfg.seeds)
    out["rl_bottom_line"] = bottom_line(cl)
    premise = cl["baselines_differ"]["verdict"] == "yes" and cl["blue_deceives"]["verdict"] == "yes"
    out["rl_premise_tag"] = " (premise met)" if premise else " (premise not met: no evidence about deception)"
    same = same_weights(scfg, out_dir)
    out["rl_random_identical_seeds"] = f"{sum(same)} of {len(same)}"
    return out


def glue_rl_classification(scfg: ScaleConfig, out_dir, res: dict | None = None) -> dict:
    """``{glue name: value}`` of ``notebooks/rl_classification``: the protocol, the accuracy (mean over training
    seeds) at the fewest, the most and the best number of episodes, and the verdict on the paper's claim of a
    perfect classifier: "yes" only when every training seed is classified correctly on every evaluation seed at
    the largest number of episodes, "no" when the mean accuracy there is at most chance, else "partly"; and the
    direction: is the honest baseline's mean SOO value lower than the deceptive one's, seed by seed
    (:func:`soo.stats.paired_t_verdict` over training seeds)?
    ``res``: :func:`classify`'s result, if the notebook has it already."""
    res = classify(scfg, out_dir) if res is None else res
    final = classification_table(res).iloc[-1]
    n_perfect = int((final == 1.0).sum())
    ms = mean_soo_table(res)
    direction = paired_t_verdict(ms["honest"], ms["deceptive"])  # "yes": honest agents have the lower mean SOO
    return {"rl_class_direction": direction["verdict"],
            "rl_class_direction_seeds": f"{direction['n_better']} of {direction['n']}","rl_class_scale": scfg.scale, "rl_class_seeds": _seeds_text(scfg), "rl_class_n_eval_seeds": scfg.class_seeds,
            "rl_class_max_episodes": max(scfg.class_episodes),
            "rl_class_acc_final": 100 * res["accuracy_mean"][-1], "rl_class_acc_first": 100 * res["accuracy_mean"][0],
            "rl_class_acc_best": 100 * max(res["accuracy_mean"]),
            "rl_class_verdict": "yes" if n_perfect == len(final) else ("no" if final.mean() <= 0.5 else "partly"),
            "rl_class_n_perfect": f"{n_perfect} of {len(final)}",
            "rl_class_acc_final_sd": 100 * float(final.std(ddof=0)), "rl_class_acc_min": 100 * float(final.min())}


def glue_rl_lottery(lottery: pd.DataFrame) -> dict:
    """``{glue name: value}`` of the pair lottery (:func:`pair_lottery`): per claim, in how many of the trained pairs,
    each analysed alone, it would have been found (``rl_lottery_{claim}``: "k of n")."""
    n = len(lottery)
    return {"rl_lottery_n": n, **{f"rl_lottery_{c}": f"{int(lottery[c].sum())} of {n}" for c in lottery.columns}}
